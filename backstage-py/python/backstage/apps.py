"""The Django app: `"backstage"` in `INSTALLED_APPS` gives `python manage.py backstage`."""

from django.apps import AppConfig


class BackstageConfig(AppConfig):
    """Backstage has no models; the app exists for its management command."""

    name = "backstage"
    verbose_name = "Backstage"
