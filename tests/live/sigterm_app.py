"""An ``ASGIToWSGI`` app whose lifespan leaves a marker file per phase, for
``tests/servers/test_live_sigterm.py``: ``$BRIDGEWAY_MARKERS/startup-PID`` once its startup ran,
``shutdown-PID`` once its shutdown ran. Every request answers its pid."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bridgeway import ASGIToWSGI


def _mark(name: str) -> None:
    Path(os.environ["BRIDGEWAY_MARKERS"], f"{name}-{os.getpid()}").touch()


async def api(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _mark("startup")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _mark("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = str(os.getpid()).encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = ASGIToWSGI(api)
