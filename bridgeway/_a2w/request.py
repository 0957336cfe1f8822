"""One ASGI request served under a WSGI server: the responder behind ASGIToWSGI.

Theory of operation
-------------------
Everything happens in the WSGI server's thread, on the event loop checked out for this
request (see ``_a2w.loops``). ``respond()`` starts the app's task and runs the loop until
the app's first body event (or its end), so an error before any byte still becomes a
500 (ASGI-www §Response Start: "need not flush ... until the first Response Body").
It then calls ``start_response`` and returns either a one-element list (the whole
response was one final message: nothing more to run, and the length is known) or this
object as the iterator. Each ``__next__`` releases the app's pending ``send()`` and runs
the loop until the next chunk: the app cannot run ahead of the server (backpressure).

``Request`` is built in layers, one module each, every one under the next:

* ``_a2w.channel_state``: what the app's side and the WSGI side share;
* ``_a2w.receive``: the app's ``receive()`` (the body, then ``http.disconnect``);
* ``_a2w.channel``: the app's ``send()``, one handler per message type (the start's
  checks are ``_a2w.start``'s, the response cycle ``_a2w.states``');
* ``_a2w.task``: the app's task and the loop steps that run it;
* ``_a2w.iteration``: the WSGI iterable's ``__next__`` and ``close()``;
* ``_a2w.first_response``: what the WSGI call returns;
* this module: the request's scope and loop, and the call itself.

A ``close()`` before the end is a disconnect: the pending ``send()`` raises
``ClientDisconnected`` (an ``OSError``, spec 2.4), ``receive()`` answers
``http.disconnect``, and the task gets a grace period before it is cancelled, off the
worker thread. A response sent with ``http.response.pathsend`` is returned as the
server's ``wsgi.file_wrapper`` (sendfile under gunicorn). In the in-process round trip
the app runs on the server's loop instead (``_a2w.nested``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._carry import carry_body, carry_request, carry_response
from .._lifespan_outcome import LifespanOutcome
from .._protocol import plain_wsgi_response
from .._scope import build_scope, content_length
from .._types import Environ, StartResponse
from ..errors import BadRequest
from .first_response import FirstResponse

if TYPE_CHECKING:
    from .._upstream import Upstream

logger = logging.getLogger("bridgeway")


def scope_of(request: Request, environ: Environ) -> dict[str, Any]:
    """The request's scope; sets how much body it has (raises ``BadRequest``)."""
    scope = build_scope(environ)
    request.body_left = content_length(environ)
    if request.body_left is None and not environ.get("wsgi.input_terminated"):
        request.body_left = 0  # no length and no EOF marker: no body (A2W-RECV-03)
    return scope


def bad_request(start_response: StartResponse, exc: BadRequest) -> list[bytes]:
    logger.info("ASGIToWSGI: bad request refused before the ASGI app ran: %s", exc)
    return plain_wsgi_response(start_response, "400 Bad Request", f"Bad Request: {exc}".encode())


class Request(FirstResponse):
    __slots__ = ()

    def respond(self, upstream: Upstream | None = None) -> Any:
        """Serve the request on a loop of the pool. ``upstream``: the live round trip
        this request belongs to, when it is not run on its server's loop
        (``_a2w.nested.live_trip``: behind WSGI middleware, with a lifespan of its own)."""
        environ, adapter = self.environ, self.adapter
        try:
            # scope_of(), inline: this is the hot path.
            scope = build_scope(environ)
            self.body_left = content_length(environ)
        except BadRequest as exc:
            return bad_request(self.start_response, exc)
        if self.body_left is None and not environ.get("wsgi.input_terminated"):
            self.body_left = 0  # no length and no EOF marker: no body (A2W-RECV-03)
        ploop = self.ploop = adapter.pool().checkout()
        ploop.serving = f"{scope['method']} {scope['path']}"
        lifespan = ploop.lifespan
        if lifespan is not None:
            if lifespan.status is LifespanOutcome.FAILED:
                self.released = True
                adapter.pool().checkin(ploop)
                return plain_wsgi_response(
                    self.start_response, "500 Internal Server Error", b"Internal Server Error"
                )
            state = lifespan.request_state()
            if state is not None:
                scope["state"] = state
        self.loop = ploop.loop
        extensions: dict[str, Any] = {"http.response.pathsend": {}}
        scope["extensions"] = extensions
        if upstream is not None:
            self.carry_from(upstream, scope, extensions)
        self.scope = scope
        ploop.run(self._start_step, nudged=True)
        return self._first_response()

    def carry_from(self, trip: Upstream, scope: dict[str, Any], extensions: dict[str, Any]) -> None:
        """A WSGIToASGI of this process calls us in this thread (a live round trip):
        what WSGI lost of the request, the server's body messages, and the response
        extensions its server offers (_carry)."""
        environ = self.environ
        carry_request(scope, environ, trip)
        if carry_body(environ, trip):
            self.body_left, self.by_message = None, True
        self.carried = carry_response(extensions, trip, self.start_response)
