"""The jazzclub's models: the tunes of tonight's set (and how often each was requested), and the
flyers uploaded for the next gigs."""

from django.db import models


class Tune(models.Model):
    title = models.CharField(max_length=200, unique=True)
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title


class Flyer(models.Model):
    """An uploaded file: stored under MEDIA_ROOT, served by nginx at MEDIA_URL."""

    title = models.CharField(max_length=200)
    image = models.FileField(upload_to="flyers/")
    uploaded = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-uploaded"]

    def __str__(self):
        return self.title
