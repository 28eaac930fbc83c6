"""Views of the jazzclub example: a home page, the tunes from the database, and small
endpoints the tests use."""

import hashlib
import os
import sys
import time

from django.db import models
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from django import forms
from django.shortcuts import redirect

from music.models import Flyer, Tune


def home(request):
    return render(request, "music/home.html", {"setlist": Tune.objects.all()})


@csrf_exempt
def tunes(request):
    """GET: every tune and its request count, from the database. POST `title=...`: one more
    request for that tune (created when new)."""
    if request.method == "POST":
        tune, _ = Tune.objects.get_or_create(title=request.POST.get("title", "")[:200])
        Tune.objects.filter(pk=tune.pk).update(requests=models.F("requests") + 1)
    return JsonResponse({"tunes": {t.title: t.requests for t in Tune.objects.all()}})


def whoami(request):
    """Which Sess answered, under which mount point, from which environment: the tests use it
    to see load balancing and which virtualenv a release imports from."""
    return JsonResponse(
        {
            "sess": os.environ.get("BACKSTAGE_SESS", ""),
            "pid": os.getpid(),
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "path": request.path,
            "host": request.get_host(),
            "prefix": sys.prefix,
        }
    )


@csrf_exempt
def echo(request):
    """Answers with the SHA-256 of the request body, so large uploads can be checked."""
    body = request.body
    return HttpResponse(
        f"{len(body)} {hashlib.sha256(body).hexdigest()}\n", content_type="text/plain"
    )


def note(request):
    """A CSRF-protected form endpoint, as a browser uses one: GET hands out the token (and its
    cookie), POST must carry it and come from a trusted origin."""
    if request.method == "POST":
        return JsonResponse({"noted": request.POST.get("text", "")})
    return JsonResponse({"csrf_token": get_token(request)})



class FlyerForm(forms.ModelForm):
    class Meta:
        model = Flyer
        fields = ["title", "image"]


def flyers(request):
    """A plain upload form (CSRF-protected): the file lands in MEDIA_ROOT, nginx serves it."""
    if request.method == "POST":
        form = FlyerForm(request.POST, request.FILES)
        if form.is_valid():
            form.save()
            return redirect("flyers")
    else:
        form = FlyerForm()
    return render(request, "music/flyers.html", {"form": form, "flyers": Flyer.objects.all()})


def stuck(request):
    """Sleeps `s` seconds (at most 120): a stuck request, for the harakiri test."""
    time.sleep(min(float(request.GET.get("s", "1")), 120))
    return HttpResponse("done\n", content_type="text/plain")


def env(request):
    """The value of one environment variable named in `name`: the tests check that values reach
    the app literally (a secret, or `%(x) 100%` from the manifest)."""
    name = request.GET.get("name", "")
    if not name.startswith(("JAZZ_", "DJANGO_SECRET_KEY", "BACKSTAGE_MEDIA")):
        return JsonResponse({"error": "not an example variable"}, status=403)
    return JsonResponse({"name": name, "value": os.environ.get(name)})


def enqueue(request):
    """Enqueues `note_task(token, sleep)` for the Celery worker (the broker of the settings)."""
    from club.celery import app  # noqa: F401  (binds the shared task to the club's app)
    from music.tasks import note_task

    token = request.GET.get("token", "")
    note_task.delay(token, float(request.GET.get("sleep", "0")))
    return JsonResponse({"queued": token})
