"""Serve a WSGI app with a stdlib-ish server that has no CLI of its own.

python -m tests.live.run_wsgi {werkzeug|wsgiref} module:attr PORT
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
    elif server == "wsgiref":
        with make_server(
            HOST, int(port), app, server_class=ThreadingWSGIServer, handler_class=QuietHandler
        ) as httpd:
            httpd.serve_forever()
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
