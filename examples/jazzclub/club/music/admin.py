from django.contrib import admin

from music.models import Tune

admin.site.register(Tune)
