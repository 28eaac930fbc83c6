"""The club's Celery app: the `celery` worker and the tasks views enqueue.

Backstage runs the worker from the manifest (`[acts.club.workers.celery]`, command
`celery -A club.celery worker`) in the Act's live release, with its environment: the broker is
`CELERY_BROKER_URL` (e.g. `redis://127.0.0.1:6379/0`). Without one, views that enqueue say so
(HTTP 503) and the rest of the site works as before.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "club.settings")

app = Celery("club")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
