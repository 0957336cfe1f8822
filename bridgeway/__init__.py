"""bridgeway: run any WSGI app on any ASGI server, and any ASGI app on any WSGI server."""

from .asgi_to_wsgi import ASGIToWSGI as ASGIToWSGI
from .errors import BadRequest as BadRequest
from .errors import BridgewayError as BridgewayError
from .errors import ClientDisconnected as ClientDisconnected
from .errors import ProtocolError as ProtocolError
from .errors import ServerContractError as ServerContractError
from .wsgi_to_asgi import WSGIToASGI as WSGIToASGI

__all__ = (
    "ASGIToWSGI",
    "BadRequest",
    "BridgewayError",
    "ClientDisconnected",
    "ProtocolError",
    "ServerContractError",
    "WSGIToASGI",
)
