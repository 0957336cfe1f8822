"""A small, ordinary Flask app, mounted on ASGI with one line at the bottom.

    uvicorn examples.flask_on_asgi.app:app          # or hypercorn, daphne, granian ...

Nothing in the Flask code knows about ASGI: ``url_for`` builds links from
``SCRIPT_NAME``, the form is read from ``wsgi.input``, and the download is a generator
streamed chunk by chunk (with backpressure) through the adapter.
"""

from __future__ import annotations

from collections.abc import Iterator
from html import escape

from flask import Flask, Response, request, stream_with_context, url_for

from bridgeway import WSGIToASGI

flask_app = Flask(__name__)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body>
<h1>{title}</h1>
{content}
<ul>
  <li><a href="{hello}">say hello</a></li>
  <li><a href="{download}">download 1000 rows as CSV (streamed)</a></li>
</ul>
<form method="post" action="{greet}">
  <input name="name" placeholder="your name"> <button>greet me</button>
</form>
</body></html>
"""


def page(title: str, content: str = "") -> str:
    return PAGE.format(
        title=escape(title),
        content=content,
        hello=escape(url_for("hello", name="World")),
        download=escape(url_for("download", rows=1000)),
        greet=escape(url_for("greet")),
    )


@flask_app.get("/")
def index() -> str:
    return page("Flask on ASGI", f"<p>Served through bridgeway at {escape(request.url)}</p>")


@flask_app.get("/hello/<name>")
def hello(name: str) -> str:
    return page(f"Hello, {name}!")


@flask_app.post("/greet")
def greet() -> str:
    name = request.form.get("name", "").strip() or "stranger"
    return page(f"Nice to meet you, {name}!")


@flask_app.get("/download")
def download() -> Response:
    rows = max(0, min(request.args.get("rows", 1000, type=int) or 0, 1_000_000))

    def generate() -> Iterator[str]:
        yield "n,square,cube\n"
        for n in range(rows):
            yield f"{n},{n * n},{n * n * n}\n"

    return Response(
        stream_with_context(generate()),  # request context stays usable while streaming
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=numbers.csv"},
    )


# The one line that matters: an ASGI 3 app any ASGI server can run.
app = WSGIToASGI(flask_app)
