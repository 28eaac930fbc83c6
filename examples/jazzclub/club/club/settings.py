"""
Django settings for the jazzclub example (created with `django-admin startproject club`).

Kept small: a sqlite database (a `shared` file in `backstage.toml`, so it outlives every
release; `migrate` runs in each deploy's release phase), the admin, and the example's `music`
app. Values that differ between a laptop and a server come from the environment, which
Backstage sets from the Act's `env` table in `backstage.toml`.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# A real deployment keeps DJANGO_SECRET_KEY out of the manifest: `backstage env club set
# DJANGO_SECRET_KEY=...` (or an `env_file`). This fallback is for the example only.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "jazzclub-example-not-secret")

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"

# Backstage tells each Sess which names its Venues serve, and the origins a browser sends to
# them (`scheme://name[:port]`): Django's CSRF check needs those for a site on port 8080.
ALLOWED_HOSTS = [h for h in os.environ.get("BACKSTAGE_ALLOWED_HOSTS", "").split(",") if h] or (
    os.environ.get("DJANGO_ALLOWED_HOSTS", ".localhost,127.0.0.1,[::1]").split(",")
)
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("BACKSTAGE_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "music",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "club.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    },
]

WSGI_APPLICATION = "club.wsgi.application"

# `db.sqlite3` is `shared` in backstage.toml: each release links it to the one kept copy.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# nginx serves STATIC_ROOT at STATIC_URL (the Act's `static` table); `collectstatic` fills it.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Uploads: `media = { "/media/" = "media" }` in backstage.toml. Backstage keeps the directory in
# the Act's shared dir (it outlives every release), serves it with nginx, and tells each Sess
# where it is.
MEDIA_URL = os.environ.get("BACKSTAGE_MEDIA_URL", "/media/")
MEDIA_ROOT = os.environ.get("BACKSTAGE_MEDIA_ROOT", BASE_DIR / "media")

# Celery (club/celery.py): a task is acknowledged once done, so one in hand when its worker is
# stopped is finished or delivered again, never lost.
# The broker: CELERY_BROKER_URL from the environment (e.g. `redis://127.0.0.1:6379/0`) when it
# is set; without it, kombu's filesystem transport, so the example's worker runs with no server
# to install: messages are files in `broker/`, a `shared` entry in backstage.toml (one directory
# for every release, the Sess' account's in system mode). See docs/decisions.md for its limits.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    BROKER_DIR = BASE_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        # A worker claims a message by renaming it into `processed/`: atomic on one filesystem,
        # so two workers (the old and the new one during a deploy) never take the same one.
        "store_processed": True,
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "polling_interval": 0.5,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
