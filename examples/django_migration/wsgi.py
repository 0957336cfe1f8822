"""The Django project on a WSGI server, with an MCP server at /mcp.

    gunicorn -k gthread --threads 8 examples.django_migration.wsgi:application
    uvicorn examples.django_migration.wsgi:asgi_app   # the same routes on an ASGI server

Django is served as it always was, by its WSGI handler; ``WSGIDispatcher`` sends
``/mcp`` to the MCP SDK's streamable-HTTP app (``mcp_tools.py``) through
``ASGIToWSGI``. ``loop_mode="shared"`` runs every MCP request on one event loop per
process, where the MCP lifespan (its session manager) runs once, as under an ASGI
server; see examples/mcp_in_flask/README.md for why, and for ``MCP_STATELESS=1``.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from bridgeway import WSGIDispatcher

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_migration.settings")
django_wsgi = get_wsgi_application()  # runs django.setup(): settings, apps, models

from .mcp_tools import mcp_app  # noqa: E402  (uses the Django models: after django.setup())

application = WSGIDispatcher(
    {"/mcp": mcp_app},
    default=django_wsgi,
    asgi_options={"loop_mode": "shared"},  # one event loop, one MCP lifespan per process
)

# The same routes for an ASGI server: the MCP app runs natively, Django through
# WSGIToASGI. The tests compare the two.
asgi_app = application.as_asgi()
