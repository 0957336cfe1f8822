"""Serve a WSGI app with a stdlib-ish server that has no CLI of its own, or with
waitress from a script (the SIGTERM recipe of docs/troubleshooting.md).

python -m tests.live.run_wsgi {werkzeug|wsgiref|waitress} module:attr PORT

SIGTERM becomes ``SystemExit``, so the process ends through the interpreter's exit
hooks (and with them ASGIToWSGI's lifespan shutdown) as it does on Ctrl-C.
"""

from __future__ import annotations

import importlib
import signal
import socketserver
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

HOST = "127.0.0.1"


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    # One thread per connection, so a streaming response does not block the probe.
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def load(spec: str) -> WSGIApplication:
    module, _, attr = spec.partition(":")
    return cast("WSGIApplication", getattr(importlib.import_module(module), attr or "app"))


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: list[str]) -> None:
    server, spec, port = argv
    app = load(spec)
    signal.signal(signal.SIGTERM, _exit)
    if server == "werkzeug":
        from werkzeug.serving import run_simple

        run_simple(HOST, int(port), app, threaded=True)
    elif server == "waitress":
        from waitress import serve

        serve(app, listen=f"{HOST}:{port}")
    elif server == "wsgiref":
        with make_server(
            HOST, int(port), app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
        ) as httpd:
            httpd.serve_forever()
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
