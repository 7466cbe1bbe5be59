"""A page and a CSRF-protected form (no csrf_exempt anywhere)."""

from __future__ import annotations

import html
import os

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"hello from django in {os.getpid()} at {request.get_host()}", content_type="text/plain")


def comment(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        text = request.POST.get("text", "")
        return HttpResponse(f"thanks for: {text}", content_type="text/plain")
    token = html.escape(get_token(request))
    return HttpResponse(
        f'<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{token}">'
        '<input name="text"><button>send</button></form>'
    )
