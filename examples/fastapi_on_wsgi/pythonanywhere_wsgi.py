"""PythonAnywhere's WSGI configuration file, for a FastAPI app.

On the Web tab, choose "Manual configuration", set the virtualenv you installed
``bridgeway`` and ``fastapi`` into, open the "WSGI configuration file" link
(``/var/www/<you>_pythonanywhere_com_wsgi.py``) and replace its contents with this file,
changing the two lines marked EDIT.
"""

import sys

# EDIT: where your code is on PythonAnywhere.
PROJECT_DIR = "/home/yourusername/yourproject"
if PROJECT_DIR not in sys.path:
    sys.path.insert(0, PROJECT_DIR)

from bridgeway import ASGIToWSGI  # noqa: E402

# EDIT: import your FastAPI app (here: the example's).
from examples.fastapi_on_wsgi.app import app  # noqa: E402

application = ASGIToWSGI(app)
