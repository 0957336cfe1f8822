"""Messages for an app handed to a server of the other kind: pure text, no I/O.

An ASGI server calls its app as ``app(scope, receive, send)`` (ASGI-main §Applications),
or, when it takes the app for an ASGI 2 one because ``__call__`` is not a coroutine
function, as ``app(scope)`` and then ``instance(receive, send)`` (uvicorn's, hypercorn's
and daphne's auto-detection). A WSGI server calls ``app(environ, start_response)``
(PEP 3333 §The Application/Framework Side). Python's own error for the mismatch
("missing 1 required positional argument: 'start_response'") says nothing about the
cause; these say which object was served where, and what to serve instead.
"""

from __future__ import annotations

ASGI_SERVER_CALLED_WSGI_ADAPTER = (
    "ASGIToWSGI is a WSGI app, but an ASGI server called it with ASGI arguments "
    "(scope, receive, send). Under an ASGI server (uvicorn, hypercorn, daphne, granian) "
    "serve the ASGI app itself, not ASGIToWSGI(app); ASGIToWSGI is for WSGI servers "
    "(gunicorn, waitress, uWSGI, mod_wsgi). A WSGI app goes under an ASGI server as "
    "WSGIToASGI(app). See docs/troubleshooting.md."
)
