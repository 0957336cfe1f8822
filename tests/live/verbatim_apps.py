"""Probe apps for the live verbatim round trip (``tests/servers/test_live_verbatim.py``):
one WSGI app served natively (``app``) and through ``ASGIToWSGI(WSGIToASGI(app))``
(``bridged``) by the same WSGI server. ``/str`` answers a ``str`` body (PEP 3333 asks
for bytes: the server judges it), ``/str-later`` a ``str`` chunk after a first
``bytes`` one (the headers are out by then); anything else a plain ``ready``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from bridgeway import ASGIToWSGI, WSGIToASGI


def _headers() -> list[tuple[str, str]]:
    return [("Content-Type", "text/plain")]  # a new list: wsgiref adds to the one it gets


def _str_later(start_response: Any) -> Iterator[Any]:
    start_response("200 OK", _headers())
    yield b"first "
    yield "then text"


def app(environ: dict[str, Any], start_response: Any) -> Iterable[Any]:
    path = environ.get("PATH_INFO")
    if path == "/str":
        start_response("200 OK", _headers())
        return ["text"]
    if path == "/str-later":
        return _str_later(start_response)
    start_response("200 OK", _headers())
    return [b"ready"]


bridged = ASGIToWSGI(WSGIToASGI(app))
