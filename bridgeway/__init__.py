"""bridgeway: run any WSGI app on any ASGI server, and any ASGI app on any WSGI server.

``WSGIToASGI(wsgi_app)`` is an ASGI app; ``ASGIToWSGI(asgi_app)`` is a WSGI app;
``ASGIDispatcher`` / ``WSGIDispatcher`` mount apps of both kinds side by side. IDs such
as ``W2A-ENV-18`` in the docstrings are items of the behaviour checklist,
docs/checklist.md.
"""

from . import _interpreter
from ._version import __version__ as __version__
from .asgi_to_wsgi import ASGIToWSGI as ASGIToWSGI
from .detect import AppKind as AppKind
from .detect import app_kind as app_kind
from .detect import as_asgi as as_asgi
from .detect import as_wsgi as as_wsgi
from .dispatch import ASGIDispatcher as ASGIDispatcher
from .dispatch import WSGIDispatcher as WSGIDispatcher
from .errors import BadRequest as BadRequest
from .errors import BridgewayError as BridgewayError
from .errors import ClientDisconnected as ClientDisconnected
from .errors import ProtocolError as ProtocolError
from .errors import ServerContractError as ServerContractError
from .wsgi_to_asgi import WSGIToASGI as WSGIToASGI

__all__ = (
    "ASGIDispatcher",
    "AppKind",
    "ASGIToWSGI",
    "BadRequest",
    "BridgewayError",
    "ClientDisconnected",
    "ProtocolError",
    "ServerContractError",
    "WSGIDispatcher",
    "WSGIToASGI",
    "app_kind",
    "as_asgi",
    "as_wsgi",
)

# In a sub-interpreter (mod_wsgi without WSGIApplicationGroup %{GLOBAL}), say so in the
# server's log before the app's own import fails there: see _interpreter.
_interpreter.warn_if_subinterpreter()
