"""A one-view Django project behind the dispatchers (``tests.live.mixed_django:NAME``).

The view answers ``{"app": "django", "script_prefix", "reverse"}``: ``reverse()`` must
carry the mount prefix, whether Django runs as WSGI (``WSGIHandler``, prefix from
SCRIPT_NAME) or as ASGI (``ASGIHandler``, prefix from ``root_path``).
"""

from __future__ import annotations

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import get_script_prefix, path, reverse

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bridgeway-tests",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler

from bridgeway import ASGIDispatcher


def page(request: HttpRequest, name: str = "") -> JsonResponse:
    return JsonResponse(
        {
            "app": "django",
            "script_prefix": get_script_prefix(),
            "reverse": reverse("page", kwargs={"name": "x"}),
        }
    )


urlpatterns = [path("", page), path("page/<name>", page, name="page")]

django_wsgi = WSGIHandler()
django_asgi = ASGIHandler()
django_mixed = ASGIDispatcher({"/legacy": django_wsgi, "/async": django_asgi})
