"""Tasks of the jazzclub example, run by its Celery worker."""

import os
import time

from celery import shared_task


@shared_task
def note_task(token, seconds=0.0):
    """Takes `seconds`, then appends `token`, the release it ran in and the worker's pid to
    the file `CLUB_TASK_LOG` names (the tests count them)."""
    time.sleep(float(seconds))
    path = os.environ.get("CLUB_TASK_LOG")
    if path:
        with open(path, "a") as f:
            f.write(f"{token} {os.getcwd()} {os.getpid()}\n")
    return token
