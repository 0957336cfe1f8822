"""A raw-socket HTTP/1.1 client: send any bytes, parse what comes back with h11.

HTTP libraries normalise what the tests need to control (percent-encoding, chunked
uploads, header case, disconnects mid-stream), so requests are plain bytes here. The
responses are parsed by a fresh h11 client connection per response, primed with a
synthetic request of the right method (h11 needs it, e.g. to know a HEAD response has
no body); bytes past the end of one response are carried over to the next, which
makes pipelining work.

    with RawConnection(port) as conn:
        conn.send(request_bytes("GET", "/a%20b?x=1"))
        response = conn.read_response()
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import h11

HOST = "127.0.0.1"


def request_bytes(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | Iterable[bytes] | None = None,
    *,
    host: str = "localhost",
    version: str = "1.1",
) -> bytes:
    """One request as bytes. A ``bytes`` body gets a Content-Length; an iterable of
    chunks is sent with ``Transfer-Encoding: chunked``. ``target`` goes out verbatim."""
    lines = [f"{method} {target} HTTP/{version}"]
    names = {name.lower() for name, _ in headers}
    if "host" not in names and host:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in headers]
    payload = b""
    if isinstance(body, bytes):
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(body)}")
        payload = body
    elif body is not None:
        if "transfer-encoding" not in names:
            lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in body if c) + b"0\r\n\r\n"
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + payload


@dataclass
class RawResponse:
    status: int
    reason: bytes
    http_version: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    informational: list[h11.InformationalResponse] = field(default_factory=list)
    complete: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), latin-1 decoded."""
        key = name.lower().encode()
        return next((v.decode("latin-1") for k, v in self.headers if k == key), None)


class RawConnection:
    """One TCP connection to 127.0.0.1:port; every socket operation has a timeout."""

    def __init__(self, port: int, *, timeout: float = 10.0, host: str = HOST) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._pending = b""  # received bytes not yet parsed into a response
        self._closed_by_peer = False

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """Half-close: the server sees EOF on the request side."""
        self.sock.shutdown(socket.SHUT_WR)

    def close(self, *, reset: bool = False) -> None:
        """Close; ``reset=True`` sends an RST (SO_LINGER 0) instead of a FIN."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _recv(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self._closed_by_peer:
            return b""
        data = self.sock.recv(65536)
        if not data:
            self._closed_by_peer = True
        return data

    def _parser(self, method: str) -> h11.Connection:
        conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=1 << 20)
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        conn.send(h11.EndOfMessage())
        return conn

    def read_head(self, method: str = "GET") -> tuple[RawResponse, h11.Connection]:
        """Read up to the final response head; the body is left to ``read_body()``."""
        conn = self._parser(method)
        informational: list[h11.InformationalResponse] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(self._recv())
                continue
            if isinstance(event, h11.InformationalResponse):
                informational.append(event)
                continue
            if isinstance(event, h11.Response):
                response = RawResponse(
                    status=event.status_code,
                    reason=event.reason,
                    http_version=event.http_version,
                    headers=list(event.headers),
                    informational=informational,
                )
                return response, conn
            raise h11.RemoteProtocolError(f"unexpected event {event!r}")

    def read_body(
        self, response: RawResponse, conn: h11.Connection, *, limit: int | None = None
    ) -> RawResponse:
        """Read the body into ``response.body``: all of it, or stop after ``limit`` bytes."""
        chunks = [response.body]
        got = len(response.body)
        while limit is None or got < limit:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(self._recv())
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
                got += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                response.complete = True
                # Whatever followed this response belongs to the next one.
                trailing, closed = conn.trailing_data
                self._pending = bytes(trailing) + self._pending
                self._closed_by_peer = self._closed_by_peer or closed
                break
            elif isinstance(event, h11.ConnectionClosed):
                break
            else:
                raise h11.RemoteProtocolError(f"unexpected event {event!r}")
        response.body = b"".join(chunks)
        return response

    def read_response(self, method: str = "GET") -> RawResponse:
        """Read one whole response (after any 1xx)."""
        response, conn = self.read_head(method)
        return self.read_body(response, conn)

    def read_until_close(self, *, deadline: float | None = None) -> bytes:
        """Everything until the server closes (for replies h11 would refuse to parse)."""
        end = time.monotonic() + (deadline if deadline is not None else self.timeout)
        chunks = []
        while time.monotonic() < end:
            data = self._recv()
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def exchange(port: int, data: bytes, *, method: str = "GET", timeout: float = 10.0) -> RawResponse:
    """Send ``data`` on a new connection and read one response."""
    with RawConnection(port, timeout=timeout) as conn:
        conn.send(data)
        return conn.read_response(method)
