from django.contrib import admin

from music.models import Flyer, Tune

admin.site.register(Tune)
admin.site.register(Flyer)
