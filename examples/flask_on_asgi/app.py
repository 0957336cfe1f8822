"""A FastAPI app with a whole Flask app mounted under /legacy, served by one ASGI server.

    uvicorn examples.flask_on_asgi.app:app          # or hypercorn, daphne, granian ...

New code is written as FastAPI routes; the Flask app (``flask_app.py``) keeps serving
everything under ``/legacy``, unchanged, through ``WSGIToASGI``. Flask sees
``SCRIPT_NAME = "/legacy"`` (from the mount's ``root_path``), so every link it builds
with ``url_for`` carries the prefix, and its session cookie, uploads and streamed
downloads work as they did under a WSGI server.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from bridgeway import WSGIToASGI

from .flask_app import flask_app

app = FastAPI(title="New API with a legacy Flask app inside")


@app.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/legacy/")


@app.get("/api/status")
async def status() -> dict[str, str]:
    return {"served_by": "FastAPI", "legacy_app": "/legacy/"}


@app.get("/api/square/{n}")
async def square(n: int) -> dict[str, int]:
    return {"n": n, "square": n * n}


# The one line that matters: the Flask app becomes an ASGI app mounted under /legacy.
app.mount("/legacy", WSGIToASGI(flask_app, max_threads=40))
