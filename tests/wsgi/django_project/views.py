"""Views covering what a web app does over HTTP: forms, JSON, uploads, redirects, cookies, errors."""

from __future__ import annotations

import hashlib
import json
from typing import Iterator

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt

BIG_SIZE = 200 * 1024


def index(request: HttpRequest) -> HttpResponse:
    name = request.GET.get("name", "world")
    return HttpResponse(f"hello {name} from django", content_type="text/plain; charset=utf-8")


@csrf_exempt
def form(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    return JsonResponse({key: request.POST.getlist(key) for key in request.POST})


@csrf_exempt
def json_echo(request: HttpRequest) -> JsonResponse:
    payload = json.loads(request.body.decode("utf-8")) if request.body else None
    return JsonResponse(
        {"method": request.method, "received": payload}, status=201 if request.method == "POST" else 200
    )


@csrf_exempt
def upload(request: HttpRequest) -> JsonResponse:
    uploaded = request.FILES["file"]
    digest = hashlib.sha256()
    for chunk in uploaded.chunks():
        digest.update(chunk)
    return JsonResponse(
        {
            "name": uploaded.name,
            "size": uploaded.size,
            "sha256": digest.hexdigest(),
            "content_type": uploaded.content_type,
            "note": request.POST.get("note", ""),
        }
    )


def redirect_to_index(request: HttpRequest) -> HttpResponse:
    return redirect("index")


def set_cookie(request: HttpRequest) -> HttpResponse:
    response = HttpResponse("cookie set", content_type="text/plain")
    response.set_cookie("flavor", request.GET.get("flavor", "oatmeal"), httponly=True)
    response.set_cookie("visits", "1", samesite="Lax")  # a second cookie in the same response
    return response


def get_cookie(request: HttpRequest) -> JsonResponse:
    return JsonResponse(dict(request.COOKIES))


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("django view exploded: secret-detail-42")


def big(request: HttpRequest) -> HttpResponse:
    return HttpResponse(bytes(i % 251 for i in range(BIG_SIZE)), content_type="application/octet-stream")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    count = int(request.GET.get("count", "5"))

    def lines() -> Iterator[bytes]:
        for number in range(count):
            yield f"line {number}\n".encode("ascii")

    return StreamingHttpResponse(lines(), content_type="text/plain")


def environ(request: HttpRequest) -> JsonResponse:
    meta = request.META
    return JsonResponse(
        {
            "script_name": meta.get("SCRIPT_NAME"),
            "path_info": meta.get("PATH_INFO"),
            "path": request.path,
            "query": meta.get("QUERY_STRING"),
            "absolute": request.build_absolute_uri(),
            "scheme": request.scheme,
            "host": request.get_host(),
            "user_agent": meta.get("HTTP_USER_AGENT"),
        }
    )
