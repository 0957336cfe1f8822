"""Entry file for Phusion Passenger (cPanel's "Setup Python App", Plesk, Dreamhost ...).

Copy this file to the application root Passenger serves, as ``passenger_wsgi.py``, and
change the two lines marked EDIT. Passenger imports it and serves ``application``.
cPanel's app setup creates the virtualenv and runs Passenger with its Python; install
your requirements and ``bridgeway`` into it (``pip install bridgeway fastapi``).
"""

import sys
from pathlib import Path

# EDIT: the directory that holds your package (here: the repository root).
PROJECT_DIR = Path(__file__).resolve().parents[2]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from bridgeway import ASGIToWSGI  # noqa: E402

# EDIT: import your FastAPI (or Starlette, Quart, Django ASGI) app.
from examples.fastapi_on_wsgi.app import app  # noqa: E402

application = ASGIToWSGI(app)
