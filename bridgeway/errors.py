"""Exceptions raised by bridgeway, each naming the side that broke the contract.

BridgewayError
 ├── ProtocolError (RuntimeError)    the application broke the WSGI or ASGI protocol
 ├── ServerContractError (RuntimeError)  the server (or its scope/environ) broke the contract
 ├── BadRequest (ValueError)         the client sent something the bridge refuses (answered 400)
 └── ClientDisconnected (OSError)    the client went away while the app was reading or sending
"""

from __future__ import annotations

__all__ = (
    "BadRequest",
    "BridgewayError",
    "ClientDisconnected",
    "ProtocolError",
    "ServerContractError",
)


class BridgewayError(Exception):
    """Base class of every exception bridgeway raises on purpose."""


class ProtocolError(BridgewayError, RuntimeError):
    """The *application* broke a rule of PEP 3333 or of the ASGI spec.

    Raised inside the application, at the call that broke the rule (for example a second
    ``start_response`` without ``exc_info``, or ``http.response.body`` before
    ``http.response.start``), so its traceback points at the culprit.
    """


class ServerContractError(BridgewayError, RuntimeError):
    """The *server* handed the bridge something the specs forbid (an unknown scope type,
    a scope without a required key)."""


class BadRequest(BridgewayError, ValueError):
    """The *client's* request cannot be passed on safely (for example conflicting
    ``Content-Length`` headers, or more repeated header lines than the configured cap).
    The bridge answers 400 before the application runs."""


class ClientDisconnected(BridgewayError, OSError):
    """The client went away.

    WSGIToASGI: raised by ``wsgi.input`` reads once the request body was cut short by a
    disconnect (a truncated body is never presented as a normal end of file), and by
    every later read too.

    ASGIToWSGI: raised by ``send()`` once the WSGI server has closed the response
    (ASGI HTTP spec 2.4, "Disconnected Client").
    """
