"""The club's Celery app: the `celery` worker and the tasks views enqueue.

Backstage runs the worker from the manifest (`[acts.club.workers.celery]`, command
`celery -A club.celery worker`) in the Act's live release, with its environment. The broker is
`CELERY_BROKER_URL` when the environment sets one (e.g. `redis://127.0.0.1:6379/0`), else the
filesystem one of `club/settings.py`.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "club.settings")

app = Celery("club")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The filesystem broker's folders, made by the first process that uses the broker (the worker,
# or a view enqueueing): as the Sess' account, in the shared dir, never by a root-run
# `collectstatic`, which does not import this module.
if app.conf.broker_url == "filesystem://":
    for key in ("data_folder_in", "processed_folder", "control_folder"):
        os.makedirs(app.conf.broker_transport_options[key], exist_ok=True)
