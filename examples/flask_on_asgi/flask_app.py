"""The legacy half: an ordinary Flask app that knows nothing about ASGI.

Templates build links with ``url_for`` (so they follow ``SCRIPT_NAME``, which
``WSGIToASGI`` sets from the mount point), the form and the upload are read from
``wsgi.input``, the download is a generator streamed chunk by chunk, the visit counter
lives in Flask's signed session cookie, and errors get the app's own pages.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from flask import Flask, Response, render_template, request, session, stream_with_context
from werkzeug.exceptions import HTTPException

flask_app = Flask(__name__)
# A real deployment sets FLASK_SECRET_KEY; the fallback keeps the example runnable.
flask_app.secret_key = os.environ.get("FLASK_SECRET_KEY", "dev-only: set FLASK_SECRET_KEY")
flask_app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024  # uploads up to 64 MiB


class Teapot(Exception):
    """Raised by /legacy/teapot to show the app's own error handler at work."""


@flask_app.before_request
def count_visits() -> None:
    session["visits"] = int(session.get("visits", 0)) + 1


@flask_app.get("/")
def index() -> str:
    return render_template("index.html", title="Flask on ASGI", url=request.url)


@flask_app.get("/hello/<name>")
def hello(name: str) -> str:
    return render_template("index.html", title=f"Hello, {name}!", url=request.url)


@flask_app.post("/greet")
def greet() -> str:
    name = request.form.get("name", "").strip() or "stranger"
    session["name"] = name
    return render_template("index.html", title=f"Nice to meet you, {name}!", url=request.url)


@flask_app.get("/whoami")
def whoami() -> dict[str, object]:
    """The session as JSON: what the cookie carried across requests."""
    return {"name": session.get("name"), "visits": session.get("visits")}


@flask_app.post("/upload")
def upload() -> tuple[str, int] | str:
    uploaded = request.files.get("file")
    if uploaded is None or not uploaded.filename:
        return render_template("index.html", title="No file was sent", url=request.url), 400
    digest = hashlib.sha256()
    size = 0
    while chunk := uploaded.stream.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return render_template(
        "upload.html",
        title="Uploaded",
        filename=uploaded.filename,
        size=size,
        sha256=digest.hexdigest(),
    )


@flask_app.get("/download")
def download() -> Response:
    rows = max(0, min(request.args.get("rows", 1000, type=int) or 0, 1_000_000))

    def generate() -> Iterator[str]:
        yield "n,square,cube\n"
        for n in range(rows):
            yield f"{n},{n * n},{n * n * n}\n"

    return Response(
        stream_with_context(generate()),  # the request context stays usable while streaming
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=numbers.csv"},
    )


@flask_app.get("/teapot")
def teapot() -> str:
    raise Teapot("this app brews no coffee")


@flask_app.errorhandler(Teapot)
def handle_teapot(exc: Teapot) -> tuple[str, int]:
    return render_template("error.html", title="Error 418", code=418, message=str(exc)), 418


@flask_app.errorhandler(404)
def handle_not_found(exc: HTTPException) -> tuple[str, int]:
    return render_template(
        "error.html", title="Error 404", code=404, message=f"no page at {request.path}"
    ), 404
