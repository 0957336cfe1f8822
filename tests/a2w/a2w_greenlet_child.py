"""Run by ``tests/a2w/test_a2w_greenlet.py`` in a child interpreter (monkeypatching cannot be
undone): ``python tests/a2w/a2w_greenlet_child.py LIBRARY VARIANT``.

Monkeypatches as a greenlet server's worker does (``gevent.monkey.patch_all()`` or
``eventlet.monkey_patch()``), then calls two ASGIToWSGI adapters (default and thread
loop mode) from 10 greenlets at once; the app awaits ``asyncio.sleep(0.2)``. Prints one
JSON line (statuses, seconds taken, the loop each request and lifespan ran on), then
``shutdown NAME`` lines from the lifespans at interpreter exit. Log records go to
stderr. VARIANT: ``plain``; ``uvloop`` (``loop_factory=uvloop.new_event_loop``, a loop
that cannot wait cooperatively); ``no-select`` (``select`` left unpatched);
``no-thread`` (gevent only: ``threading`` left unpatched).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

LIBRARY, VARIANT = sys.argv[1], sys.argv[2]

if LIBRARY == "gevent":
    import gevent
    import gevent.monkey

    gevent.monkey.patch_all(select=VARIANT != "no-select", thread=VARIANT != "no-thread")

    def together(calls: list[Callable[[], Any]]) -> list[Any]:
        greenlets = [gevent.spawn(call) for call in calls]
        gevent.joinall(greenlets, raise_error=True)
        return [g.value for g in greenlets]

else:
    import eventlet

    # Any keyword set to True would patch that module only: name only what is left out.
    eventlet.monkey_patch(**({"select": False} if VARIANT == "no-select" else {}))

    def together(calls: list[Callable[[], Any]]) -> list[Any]:
        pool = eventlet.GreenPool()
        threads = [pool.spawn(call) for call in calls]
        return [t.wait() for t in threads]


import asyncio  # noqa: E402 - after monkeypatching, as a worker imports the app
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

from bridgeway import ASGIToWSGI  # noqa: E402

logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
startups: list[tuple[str, int]] = []


def make_app(name: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        loop = id(asyncio.get_running_loop())
        if scope["type"] == "lifespan":
            await receive()
            startups.append((name, loop))
            await send({"type": "lifespan.startup.complete"})
            await receive()
            print("shutdown", name, flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return
        await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(loop).encode()})

    return app


factory: dict[str, Any] = {}
if VARIANT == "uvloop":
    import uvloop

    factory = {"loop_factory": uvloop.new_event_loop}
adapters = [
    ASGIToWSGI(make_app("inline"), **factory),
    ASGIToWSGI(make_app("thread"), loop_mode="thread", **factory),
]


def call(adapter: ASGIToWSGI) -> tuple[str, int]:
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(line)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    body = b"".join(adapter(environ, start_response))
    return status[0], int(body)


began = time.monotonic()
results = together([functools.partial(call, adapter) for adapter in adapters for _ in range(5)])
print(
    json.dumps(
        {
            "statuses": [status for status, _ in results],
            "seconds": time.monotonic() - began,
            "request_loops": sorted({loop for _, loop in results}),
            "startups": startups,
        }
    ),
    flush=True,
)
