"""URL configuration for the jazzclub example."""

from django.contrib import admin
from django.urls import path

from music import views

urlpatterns = [
    path("", views.home, name="home"),
    path("whoami", views.whoami, name="whoami"),
    path("echo", views.echo, name="echo"),
    path("note", views.note, name="note"),
    path("tunes", views.tunes, name="tunes"),
    path("flyers", views.flyers, name="flyers"),
    path("stuck", views.stuck, name="stuck"),
    path("env", views.env, name="env"),
    path("enqueue", views.enqueue, name="enqueue"),
    path("admin/", admin.site.urls),
]
