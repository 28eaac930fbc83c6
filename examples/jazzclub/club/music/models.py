"""The jazzclub's one model: the tunes of tonight's set, and how often each was requested."""

from django.db import models


class Tune(models.Model):
    title = models.CharField(max_length=200, unique=True)
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title
