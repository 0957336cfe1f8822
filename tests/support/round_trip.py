"""The WSGI round trip the mix tests drive: ``ASGIToWSGI(WSGIToASGI(app))``, with or
without an ASGI middleware between the two adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bridgeway import WSGIToASGI
from bridgeway._types import Receive, Scope, Send
from tests.support.a2w_driver import serving


@contextmanager
def double(
    app: Any, middleware: Callable[[Any], Any] | None = None, **settings: Any
) -> Iterator[Any]:
    """``ASGIToWSGI(WSGIToASGI(app))``, optionally with an ASGI middleware between the
    two, shut down when the block ends (``settings`` go to ASGIToWSGI)."""
    inner: Any = WSGIToASGI(app)
    asgi_app = inner if middleware is None else middleware(inner)
    with serving(asgi_app, lifespan="off", **settings) as outer:
        yield outer


def header_adder(inner: Any) -> Any:
    """An ASGI middleware that adds a header to the start message, in place."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_header(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-added", b"yes")]
            await send(message)

        await inner(scope, receive, send_with_header)

    return app
