from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("form/", views.form, name="form"),
    path("json/", views.json_echo, name="json"),
    path("upload/", views.upload, name="upload"),
    path("redirect/", views.redirect_to_index, name="redirect"),
    path("cookie/set/", views.set_cookie, name="cookie-set"),
    path("cookie/get/", views.get_cookie, name="cookie-get"),
    path("boom/", views.boom, name="boom"),
    path("big/", views.big, name="big"),
    path("stream/", views.stream, name="stream"),
    path("environ/", views.environ, name="environ"),
]
