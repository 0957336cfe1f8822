"""The WSGI probe of the conformance suite (import as ``tests.conformance.w2a_probe:NAME``).

``probe`` is a plain WSGI app; ``app`` is ``WSGIToASGI(probe)``, served by every ASGI
server, while ``probe`` itself is served natively by gunicorn for the differential.
``shimmed`` is ``app`` behind a scope shim (``x-shim-root-path``, ``x-shim-path`` and
``x-shim-raw-path`` request headers overwrite those scope keys) for scope shapes a real
server cannot produce (W2A-ENV-04/06).

Routes (the query string carries the parameters; ``rid`` names a recorder log):

- ``/__read?mode=M&n=N``: reads ``wsgi.input`` with pattern M, answers
  ``{"sha256", "length", "calls": [[call, returned length], ...]}``; a read that raises
  is logged to the recorder as ``{"event": "read-error", "type": name}``.
- ``/__stream?n=N&size=S&delay=D``: N chunks (endless without n); the recorder logs
  each ``next`` and the ``close`` with the thread id.
- ``/__raise?stage=call|first|after``: raise in the app call, at the first ``next()``
  (after ``start_response``), or after three chunks.
- ``/__status?s=S``: ``start_response(S, ...)``; reports what it raised (``catch=1``)
  or lets it escape.
- ``/__headers?case=C``: response-header cases (see ``HEADER_CASES``).
- ``/__empty?s=204``: an empty list body with that status.
- ``/__write?s=S&delay=D``: ``write(b"a")``, ``write(b"b")``, then ``[b"c"]``.
- ``/__length?declared=D&sent=S``: declares one Content-Length, yields another.
- ``/__file?offset=O&length=L&kind=bytesio|path``: ``wsgi.file_wrapper``.
- ``/__errors``: writes non-ASCII text to ``wsgi.errors``.
- ``/__lazy``: three ``b""`` chunks 0.2 s apart, then ``b"x"``.
- ``/__one``: ``[b"hello"]`` without Content-Length; ``/__excinfo``: an error page
  through ``exc_info``; ``/__str``: yields a ``str`` (first, or ``after=1``).
- ``/__reject``: answers 413 without touching the body.
- ``/__big?size=S``: one fixed-length body of S bytes.
- ``/__file-abort?size=S``: ``wsgi.file_wrapper`` over a file-like that logs reads and
  ``close()``; ``/__late-read``: reads ``wsgi.input`` in ``close()`` and from a thread
  after the response (W2A-INPUT-11); ``/__close-input``: closes ``wsgi.input``.
- anything else: the environ as JSON, ``{key: [type name, value or repr]}``, plus
  ``"probe.seen_added"``: whether a key the previous request added leaked in.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from bridgeway import WSGIToASGI

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from bridgeway._types import Receive, Scope, Send

RECORDER_ENV = "BRIDGEWAY_PROBE_DIR"
PLAIN = (str, int, float, bool, type(None))


def record(rid: str, event: str, **data: Any) -> None:
    """Append one event (with time and thread id) to ``$BRIDGEWAY_PROBE_DIR/<rid>.jsonl``."""
    folder = os.environ.get(RECORDER_ENV)
    if not folder or not rid:
        return
    line = json.dumps(
        {"event": event, "t": time.monotonic(), "thread": threading.get_ident(), **data}
    )
    with open(Path(folder) / f"{rid}.jsonl", "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _json(start_response: StartResponse, data: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, sort_keys=True).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def typed_environ(environ: WSGIEnvironment) -> dict[str, list[Any]]:
    return {k: [type(v).__name__, v if type(v) in PLAIN else repr(v)] for k, v in environ.items()}


def _read(environ: WSGIEnvironment, mode: str, n: int, rid: str) -> dict[str, Any]:
    stream = environ["wsgi.input"]
    calls: list[list[Any]] = []
    chunks: list[bytes] = []

    def call(name: str, data: bytes) -> bytes:
        calls.append([name, len(data)])
        chunks.append(data)
        return data

    try:
        if mode == "read":
            call("read()", stream.read())
        elif mode == "read-none":
            call("read(None)", stream.read(None))
        elif mode == "read-1":
            call("read(-1)", stream.read(-1))
        elif mode == "read0":
            call("read(0)", stream.read(0))
            call("read()", stream.read())
        elif mode == "readn":
            while call(f"read({n})", stream.read(n)):
                pass
        elif mode == "readline":
            while call("readline()", stream.readline()):
                pass
        elif mode == "readline-size":
            while call(f"readline({n})", stream.readline(n)):
                pass
        elif mode == "readlines":
            for line in stream.readlines():
                call("readlines()", line)
        elif mode == "iter":
            for line in stream:
                call("iter", line)
        elif mode == "after-eof":
            call("read()", stream.read())
            for _ in range(10):
                call("read(1)", stream.read(1))
        else:
            raise ValueError(mode)
    except Exception as exc:
        record(rid, "read-error", type=type(exc).__name__, oserror=isinstance(exc, OSError))
        raise
    body = b"".join(chunks)
    return {"sha256": hashlib.sha256(body).hexdigest(), "length": len(body), "calls": calls}


class RecordedFile:
    """A file-like object that logs its ``close()`` (EXT-03)."""

    def __init__(self, rid: str, size: int) -> None:
        self.rid, self.remaining = rid, size

    def read(self, size: int = -1) -> bytes:
        size = self.remaining if size < 0 else min(size, self.remaining)
        self.remaining -= size
        record(self.rid, "file-read", size=size)
        return b"f" * size

    def close(self) -> None:
        record(self.rid, "file-close")


class LateReader:
    """A body that hands ``wsgi.input`` to a helper thread after the response (W2A-INPUT-11)."""

    def __init__(self, rid: str, stream: Any) -> None:
        self.rid, self.stream = rid, stream

    def __iter__(self) -> Iterator[bytes]:
        yield b"done"

    def _read_late(self, where: str) -> None:
        try:
            data = self.stream.read(10)
            record(self.rid, "late-read", where=where, result=repr(data))
        except Exception as exc:
            record(self.rid, "late-read", where=where, result=type(exc).__name__)

    def close(self) -> None:
        self._read_late("close")
        helper = threading.Thread(target=self._read_late, args=("thread",))
        helper.start()  # still reading after the response is over


class Recorded:
    """A response iterable that logs every ``next()`` and ``close()`` to the recorder."""

    def __init__(self, rid: str, n: int | None, size: int, delay: float) -> None:
        self.rid, self.n, self.size, self.delay = rid, n, size, delay

    def __iter__(self) -> Iterator[bytes]:
        chunk = b"x" * (self.size - 1) + b"\n"
        i = 0
        while self.n is None or i < self.n:
            if self.delay:
                time.sleep(self.delay)  # the app's own pacing, not synchronisation
            record(self.rid, "next", i=i)
            yield chunk
            i += 1

    def close(self) -> None:
        record(self.rid, "close")


def _raising(rid: str, stage: str) -> Iterator[bytes]:
    try:
        if stage == "first":
            raise RuntimeError("probe: raised at the first next()")
        if stage == "empty":
            yield b""  # an empty chunk must not send the headers (W2A-RESP-07)
            raise RuntimeError("probe: raised after an empty chunk")
        for i in range(3):
            record(rid, "next", i=i)
            yield b"chunk %d\n" % i
        raise RuntimeError("probe: raised after three chunks")
    finally:
        record(rid, "close")


def _lazy() -> Iterator[bytes]:
    """Empty chunks first (W2A-RESP-07): they must not send the headers."""
    for _ in range(3):
        yield b""
        time.sleep(0.2)  # the app's own pacing
    yield b"x"


HEADER_CASES: dict[str, list[tuple[str, str]]] = {
    # W2A-RESP-03: a latin-1 value goes out as the byte 0xE9.
    "latin1": [("Content-Disposition", 'attachment; filename="café.txt"')],
    # W2A-RESP-04: order and duplicates kept, names lower-cased by the adapter.
    "cookies": [("X-Mixed-Case", "1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
    # W2A-RESP-05: hop-by-hop headers from the app.
    "hop": [("Transfer-Encoding", "chunked"), ("Connection", "close"), ("Keep-Alive", "5")],
    # HTTP-10: the same Content-Length twice.
    "cl-twice": [("Content-Length", "2"), ("Content-Length", "2")],
    "cl-conflict": [("Content-Length", "2"), ("Content-Length", "3")],
    # W2A-RESP-02: response splitting and bad names/values.
    "crlf": [("X-A", "v\r\nSet-Cookie: p=1")],
    "space-name": [("X A", "v")],
    "snowman": [("X-A", "☃")],
}


def _file(environ: WSGIEnvironment, start_response: StartResponse, q: dict[str, str]) -> Any:
    data = bytes(range(256)) * 4
    offset = int(q.get("offset", "0"))
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    filelike: Any
    if q.get("kind") == "path":
        fd, name = tempfile.mkstemp(prefix="w2a-probe-")
        os.write(fd, data)
        os.close(fd)
        filelike = open(name, "rb")  # noqa: SIM115 - closed by the file wrapper
        os.unlink(name)
    else:
        filelike = io.BytesIO(data)
    filelike.seek(offset)
    start_response("200 OK", headers)
    wrapper: Iterable[bytes] = environ["wsgi.file_wrapper"](filelike, 100)
    if "length" in q:
        # PEP 3333: the server (here, the probe on its behalf) stops at Content-Length.
        return _limit(wrapper, int(q["length"]))
    return wrapper


def _limit(wrapper: Iterable[bytes], length: int) -> Iterator[bytes]:
    try:
        for block in wrapper:
            block = block[:length]
            length -= len(block)
            if block:
                yield block
            if length <= 0:
                return
    finally:
        close = getattr(wrapper, "close", None)
        if close is not None:
            close()


_previous_environ: list[dict[str, Any]] = []


def probe(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    rid = q.get("rid", "")
    if rid:
        record(rid, "call", path=path)
    if path == "/__read":
        time.sleep(float(q.get("delay", "0")))  # a slow app: the upload must wait for it
        return _json(start_response, _read(environ, q["mode"], int(q.get("n", "10")), rid))
    if path == "/__stream":
        n = int(q["n"]) if "n" in q else None
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Recorded(rid, n, int(q.get("size", "1024")), float(q.get("delay", "0")))
    if path == "/__raise":
        if q["stage"] == "call":
            raise RuntimeError("probe: raised in the app call")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _raising(rid, q["stage"])
    if path == "/__status":
        try:
            status: Any = 200 if q["s"] == "int" else q["s"]  # "int": the int 200
            start_response(status, [("Content-Type", "text/plain")])
        except Exception as exc:
            if "catch" not in q:
                raise
            return _json(start_response, {"raised": type(exc).__name__})
        return [b"status set\n"]
    if path == "/__headers":
        try:
            start_response("200 OK", [("Content-Type", "text/plain"), *HEADER_CASES[q["case"]]])
        except Exception as exc:
            return _json(start_response, {"raised": type(exc).__name__})
        return [b"ok"]
    if path == "/__empty":
        start_response(q.get("s", "204 No Content"), [])
        return [q["body"].encode()] if "body" in q else []
    if path == "/__lazy":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _lazy()
    if path == "/__one":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    if path == "/__excinfo":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("probe: replaced by an error page")
        except ValueError:
            start_response("500 Internal Server Error", [("X-Error", "1")], sys.exc_info())
        return [b"error page"]
    if path == "/__str":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"good", "text"] if "after" in q else ["text"]  # type: ignore[list-item]
    if path == "/__write":
        write = start_response(q.get("s", "200 OK"), [("Content-Type", "text/plain")])
        write(b"a")
        time.sleep(float(q.get("delay", "0")))  # the app's own pacing
        write(b"b")
        return [b"c"]
    if path == "/__length":
        declared, sent = int(q["declared"]), int(q["sent"])
        start_response("200 OK", [("Content-Length", str(declared))])
        return Recorded(rid, 1, sent, 0.0)
    if path == "/__file":
        return _file(environ, start_response, q)  # type: ignore[no-any-return]
    if path == "/__errors":
        errors = environ["wsgi.errors"]
        errors.write("probe-errors é✓\n")
        errors.writelines(["probe-lines ü\n"])
        errors.flush()
        return _json(start_response, {"ok": True})
    if path == "/__reject":
        start_response("413 Content Too Large", [("Content-Length", "0")])
        return []
    if path == "/__close-input":
        environ["wsgi.input"].close()
        seekable = getattr(environ["wsgi.input"], "seekable", None)
        return _json(start_response, {"seekable": bool(seekable and seekable())})
    if path == "/__file-abort":
        size = int(q.get("size", str(64 << 20)))
        start_response("200 OK", [("Content-Length", str(size))])
        wrapper: Iterable[bytes] = environ["wsgi.file_wrapper"](RecordedFile(rid, size), 65536)
        return wrapper
    if path == "/__late-read":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return LateReader(rid, environ["wsgi.input"])
    if path == "/__big":
        size = int(q.get("size", str(1 << 20)))
        start_response("200 OK", [("Content-Length", str(size))])
        return [b"b" * size]
    seen_added = bool(_previous_environ and "probe.added" in environ)
    same_object = bool(_previous_environ and _previous_environ[-1] is environ)
    echoed = typed_environ(environ)
    environ["probe.added"] = True
    environ["HTTP_X_PROBE_CHANGED"] = "changed"
    _previous_environ[:] = [environ]
    return _json(
        start_response,
        {
            "environ": echoed,
            "environ_type": type(environ).__name__,
            "seen_added": seen_added,
            "same_object": same_object,
        },
    )


app = WSGIToASGI(probe)


class ScopeShim:
    """Overwrite scope keys from ``x-shim-*`` request headers, then call the adapter."""

    def __init__(self, inner: WSGIToASGI) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"x-shim-type", b"foo") in scope["headers"]:
            await self._unknown_type(scope, receive, send)
            return
        if scope["type"] == "http":
            scope = dict(scope)
            for name, value in scope["headers"]:
                if name == b"x-shim-root-path":
                    scope["root_path"] = value.decode()
                elif name == b"x-shim-path":
                    scope["path"] = value.decode()
                elif name == b"x-shim-raw-path":
                    scope["raw_path"] = value
                elif name == b"x-shim-no-raw-path":
                    scope.pop("raw_path", None)
        await self.inner(scope, receive, send)

    async def _unknown_type(self, scope: Scope, receive: Receive, send: Send) -> None:
        """W2A-SCOPE-07: hand the adapter a scope of type "foo"; report what it did."""
        received = []

        async def spy() -> Any:
            received.append(True)
            return await receive()

        try:
            await self.inner({**scope, "type": "foo"}, spy, send)
            outcome = "returned"
        except Exception as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        body = json.dumps({"outcome": outcome, "received": bool(received)}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


shimmed = ScopeShim(app)

LIFESPAN_RID_ENV = "BRIDGEWAY_PROBE_LIFESPAN_RID"


def _lifespan_event(event: str) -> Callable[[], None]:
    def hook() -> None:
        record(os.environ.get(LIFESPAN_RID_ENV, ""), event, pid=os.getpid())

    return hook


def _failing_hook() -> None:
    raise RuntimeError("probe: startup hook failed on purpose")


# W2A-SCOPE-02/03: lifespan hooks that record, and one that fails.
with_hooks = WSGIToASGI(
    probe,
    on_startup=[_lifespan_event("startup")],
    on_shutdown=[_lifespan_event("shutdown")],
    shutdown_timeout=10.0,
)
failing_startup = WSGIToASGI(probe, on_startup=[_failing_hook])


def _mounted() -> Any:
    # W2A-SCOPE-08: the adapter under Starlette's Mount, which rewrites root_path.
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return Starlette(routes=[Mount("/mnt", app=app)])


mounted = _mounted()
