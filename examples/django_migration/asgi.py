"""One ASGI app: new FastAPI endpoints under /api, everything else still Django.

    uvicorn examples.django_migration.asgi:app

Django is served through its WSGI handler (``get_wsgi_application()``) wrapped in
``WSGIToASGI``, so the whole project (middleware, sessions, the admin, streaming
responses, connection handling) behaves exactly as it did under gunicorn or uWSGI.
Starlette's router sends ``/api/...`` to FastAPI and every other path to Django; moving
another route group over is one more ``Mount`` above the last one.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application
from starlette.applications import Starlette
from starlette.routing import Mount

from bridgeway import WSGIToASGI

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_migration.settings")
django_wsgi = get_wsgi_application()  # runs django.setup(): settings, apps, models

from .api import api  # noqa: E402  (imports Django models: only after django.setup())

app = Starlette(
    routes=[
        Mount("/api", app=api),
        Mount("/", app=WSGIToASGI(django_wsgi, max_threads=40)),  # the fallback: Django
    ]
)
