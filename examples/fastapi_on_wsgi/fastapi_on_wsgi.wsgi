# mod_wsgi script for Apache (and for mod_wsgi-express): it must define `application`.
#
#   mod_wsgi-express start-server examples/fastapi_on_wsgi/fastapi_on_wsgi.wsgi \
#       --processes 2 --threads 8 --port 8000 --chunked-request
#
# Under Apache's own configuration, serve it in daemon mode, in the main interpreter
# (FastAPI's pydantic-core cannot be imported in a second sub-interpreter):
#
#   WSGIPythonHome /path/to/venv
#   WSGIDaemonProcess myapp processes=2 threads=8 python-path=/path/to/project
#   WSGIProcessGroup myapp
#   WSGIApplicationGroup %{GLOBAL}
#   WSGIScriptAlias / /path/to/project/examples/fastapi_on_wsgi/fastapi_on_wsgi.wsgi
#
# bridgeway is imported first: in a sub-interpreter it says so in Apache's error log.
import sys
from pathlib import Path

# EDIT: the directory that holds your package (here: the repository root).
PROJECT_DIR = Path(__file__).resolve().parents[2]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from bridgeway import ASGIToWSGI

# EDIT: import your FastAPI app.
from examples.fastapi_on_wsgi.app import app

application = ASGIToWSGI(app)
