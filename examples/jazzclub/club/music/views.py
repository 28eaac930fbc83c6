"""Views of the jazzclub example: a home page, the tunes from the database, and small
endpoints the tests use."""

import hashlib
import os

from django.db import models
from django.http import HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from music.models import Tune


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
    """Which Sess answered, and under which mount point: the tests use it to see load balancing."""
    return JsonResponse(
        {
            "sess": os.environ.get("BACKSTAGE_SESS", ""),
            "pid": os.getpid(),
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "path": request.path,
            "host": request.get_host(),
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

