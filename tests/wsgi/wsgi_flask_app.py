"""A real Flask application served through the relay in tests (``hybridconn serve wsgi_flask_app:app``)."""

from __future__ import annotations

import hashlib
from typing import Iterator

from flask import Flask, Response, jsonify, make_response, redirect, request, stream_with_context, url_for

BIG_SIZE = 200 * 1024

app = Flask(__name__)


@app.get("/")
def index() -> Response:
    return make_response(f"hello {request.args.get('name', 'world')} from flask", 200, {"Content-Type": "text/plain"})


@app.post("/form")
def form() -> Response:
    return jsonify({key: request.form.getlist(key) for key in request.form})


@app.route("/json", methods=["GET", "POST", "PUT"])
def json_echo() -> Response:
    return jsonify(method=request.method, received=request.get_json(silent=True))


@app.post("/upload")
def upload() -> Response:
    uploaded = request.files["file"]
    data = uploaded.read()
    return jsonify(name=uploaded.filename, size=len(data), sha256=hashlib.sha256(data).hexdigest())


@app.get("/redirect")
def redirect_to_index() -> Response:
    return redirect(url_for("index"))


@app.get("/cookie/set")
def set_cookie() -> Response:
    response = make_response("cookie set")
    response.set_cookie("flavor", request.args.get("flavor", "oatmeal"))
    response.set_cookie("visits", "1", samesite="Lax")  # a second cookie in the same response
    return response


@app.get("/cookie/get")
def get_cookie() -> Response:
    return jsonify(dict(request.cookies))


@app.get("/boom")
def boom() -> Response:
    raise RuntimeError("flask view exploded: secret-detail-42")


@app.get("/big")
def big() -> Response:
    return Response(bytes(i % 251 for i in range(BIG_SIZE)), mimetype="application/octet-stream")


@app.get("/stream")
def stream() -> Response:
    count = int(request.args.get("count", "5"))

    def lines() -> Iterator[str]:
        for number in range(count):
            yield f"line {number}\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


@app.get("/environ")
def environ() -> Response:
    return jsonify(
        script_name=request.environ.get("SCRIPT_NAME"),
        path_info=request.environ.get("PATH_INFO"),
        path=request.script_root + request.path,
        url=request.url,
        url_root=request.url_root,
        scheme=request.scheme,
        host=request.host,
        user_agent=request.headers.get("User-Agent"),
    )
