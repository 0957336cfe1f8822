"""One WSGI request served under an ASGI server: the responder behind WSGIToASGI.

Theory of operation
-------------------
Two parties cooperate per request:

* the **request task** (on the event loop: asyncio or trio) owns ``receive`` and
  ``send``. It submits the WSGI app to a pool thread, then *serves the thread*: it takes
  what the thread posted to a ``Mailbox`` (body chunks to send, requests for body bytes)
  and does the awaiting on its behalf;
* the **worker thread** calls the app, ``start_response``, ``write()``, iterates the
  response and finally calls ``close()`` on it, always, in that same thread (PEP 3333
  §Specification Details).

Backpressure: after posting a chunk the thread may compute the next one, but before it
posts that one it waits until the loop has returned from ``send()`` for the previous
chunk; ``write()`` waits at once. So at most two chunks are in memory (W2A-RESP-10).

Laziness (PEP 3333 §The start_response() Callable): nothing is sent before the first
non-empty chunk or the end of the iterable; until then an error still becomes a clean
500. The common one-chunk response is posted as start + chunk, and when the iterable
ends before the loop took it, the end is folded into that same post: one wake-up of the
loop per request, and the server sees exactly what a native ASGI app would send.

Disconnect: ``send()`` raising ``OSError``, ``receive()`` returning ``http.disconnect``
(read by a watcher task once the request body is consumed and the response streams),
or cancellation of the request task all set ``halt``; the thread stops at the next
chunk boundary and closes the iterable.
"""

from __future__ import annotations

import contextvars
import logging
import queue
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anyio

from ._environ import build_environ
from ._headers import check_wsgi_header, is_hop_by_hop, parse_wsgi_status, wsgi_headers_to_asgi
from ._threads import Mailbox, current_handle
from ._types import Message, OptExcInfo, Receive, Scope, Send
from ._wsgi_input import WSGIInput
from .errors import BadRequest, ClientDisconnected, ProtocolError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .wsgi_to_asgi import WSGIToASGI

logger = logging.getLogger("bridgeway")

_SEND, _RECV, _DONE = 1, 2, 3
_DISCONNECT = object()
_PREFETCH = 4  # request body messages the receiver may hand over ahead of reads
_ERROR_BODY = b"Internal Server Error"


def plain_response(status: int, body: bytes) -> list[Message]:
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        },
        {"type": "http.response.body", "body": body, "more_body": False},
    ]


class HTTPCycle:
    __slots__ = (
        "_adapter",
        "_body_done",
        "_cl",
        "_complete",
        "_consumed",
        "_delivered",
        "_environ",
        "_headers",
        "_headers_sent",
        "_input_replies",
        "_mailbox",
        "_no_body",
        "_receive",
        "_receiving",
        "_remaining",
        "_replies",
        "_scope",
        "_send",
        "_send_error",
        "_space",
        "_started",
        "_status",
        "_stream_started",
        "_streaming",
        "_unacked",
        "_want_receiver",
        "disconnected",
        "halt",
        "paused",
    )

    def __init__(self, adapter: WSGIToASGI, scope: Scope, receive: Receive, send: Send) -> None:
        self._adapter = adapter
        self._scope = scope
        self._receive = receive
        self._send = send
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._cl: int | None = None
        self._remaining: int | None = None
        self._headers_sent = False
        self._complete = False
        self._no_body = False
        self._unacked = 0
        self._body_done = False
        self._want_receiver = False
        self._receiving = False
        self._delivered = 0  # body messages handed to wsgi.input (written by the loop)
        self._consumed = 0  # body messages taken by wsgi.input (written by the thread)
        self._space: anyio.Event | None = None
        self._streaming = False
        self._send_error: Exception | None = None
        self._stream_started: anyio.Event | None = None
        self.paused = False
        self._replies: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._input_replies: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started = False
        self.halt = False
        self.disconnected = False

    # ------------------------------------------------------------------ loop side

    async def run(self) -> None:
        adapter = self._adapter
        try:
            environ = build_environ(
                self._scope,
                multiprocess=adapter.multiprocess,
                keep_underscore_headers=adapter.keep_underscore_headers,
                max_header_repeats=adapter.max_header_repeats,
            )
        except BadRequest as exc:
            logger.info("bridgeway: bad request refused before the WSGI app ran: %s", exc)
            for message in plain_response(400, f"Bad Request: {exc}".encode()):
                await self._send(message)
            return
        environ["wsgi.input"] = WSGIInput(self._pull)
        environ["wsgi.errors"] = adapter.errors
        environ["wsgi.file_wrapper"] = adapter.file_wrapper
        self._environ = environ
        self._mailbox = Mailbox(current_handle())
        # Requests over the thread limit wait in the pool's FIFO queue, never refused.
        adapter.pool().submit(self._job())
        error = await self._pump()
        if error is None and self._want_receiver and not self._mailbox.closed:
            self._receiving = True  # from here on only the receiver task calls receive()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receiver)
                error = await self._pump()
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if self._send_error is not None:
            raise self._send_error

    def _job(self) -> Callable[[], Callable[[], None] | None]:
        ctx = contextvars.copy_context()
        return lambda: ctx.run(self._thread_main)

    async def _pump(self) -> BaseException | None:
        """Serve the thread until it is done (returns its error to raise, or None),
        or until the receiver task is wanted (returns None, ``_want_receiver`` set)."""
        mailbox = self._mailbox
        receiving = self._receiving
        try:
            while True:
                if self._want_receiver and not receiving:
                    return None
                for item in await mailbox.take():
                    kind = item[0]
                    if kind == _SEND:
                        await self._do_send(item[1], item[2])
                    elif kind == _RECV:
                        self._do_recv()
                    else:
                        mailbox.close()
                        error: BaseException | None = item[1]
                        return error
        except anyio.get_cancelled_exc_class():
            await self._stop_thread()
            raise

    async def _do_send(self, messages: list[Message], ack: bool) -> None:
        if not self.disconnected:
            try:
                for message in messages:
                    await self._send(message)
            except OSError:
                # ASGI-www 2.4: send() may raise OSError once the client has gone.
                self._on_disconnect()
            except Exception as exc:
                # The server refused the message. Stop the app as for a disconnect, so
                # its iterable is still closed in its thread, then re-raise (run()).
                self._send_error = exc
                self._on_disconnect()
            else:
                if messages[-1].get("more_body") and self._adapter.watch_disconnect:
                    # A streaming response: listen for the client leaving (W2A-RESP-14).
                    self._want_receiver = True
                    if not self._streaming:
                        self._streaming = True
                        if self._stream_started is not None:
                            self._stream_started.set()
        if ack:
            self._replies.put(not self.disconnected)

    def _do_recv(self) -> None:
        """wsgi.input needs bytes: start the receiver task, or wake it if it paused."""
        if self.disconnected:
            self._input_replies.put(_DISCONNECT)
        elif not self._receiving:
            self._want_receiver = True
        elif self._space is not None:
            self._space.set()

    async def _receiver(self) -> None:
        """The only caller of receive() once started (at the app's first body read, or
        when the response starts streaming). It hands body messages to wsgi.input
        ahead of its reads, at most _PREFETCH of them (W2A-INPUT-06), so a fast upload
        costs no round trip per chunk; once the body is done it keeps listening for
        http.disconnect (W2A-RESP-14)."""
        replies = self._input_replies
        while True:
            if self._body_done and not self._streaming:
                # Nothing to read; listen for a disconnect only once the response
                # streams (a one-shot response needs no watcher).
                self._stream_started = anyio.Event()
                if not self._streaming:
                    await self._stream_started.wait()
                continue
            if not self._body_done and self._delivered - self._consumed >= _PREFETCH:
                self._space = anyio.Event()
                self.paused = True
                if self._delivered - self._consumed >= _PREFETCH:  # re-check: no lost wake
                    await self._space.wait()
                self.paused = False
                self._space = None
                continue
            message = await self._receive()
            if message["type"] == "http.request":
                if self._body_done:
                    continue
                more = message.get("more_body", False)
                if not more:
                    self._body_done = True
                self._delivered += 1
                replies.put((message.get("body", b""), more))
            elif message["type"] == "http.disconnect":
                self._on_disconnect()
                replies.put(_DISCONNECT)
                return

    def _on_disconnect(self) -> None:
        self.disconnected = True
        self.halt = True

    async def _stop_thread(self) -> None:
        """The request task was cancelled: stop the thread at its next chunk boundary,
        wait (shielded, bounded) for it to close the iterable, then let the
        cancellation go on."""
        self.halt = True
        if not self._started:
            # Still queued for a thread: nothing to wait for. The thread that picks the
            # job up sees ``halt`` and never starts the app (``_thread_main`` sets
            # ``_started`` before it reads ``halt``, so one of the two sees the other).
            # Waiting here would hold the cancellation up until some other request
            # freed a thread, up to ``cancel_timeout``.
            self._mailbox.close()
            return
        self._replies.put(False)
        self._input_replies.put(_DISCONNECT)
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._adapter.cancel_timeout):
                while True:
                    for item in await self._mailbox.take():
                        if item[0] == _SEND and item[2]:
                            self._replies.put(False)
                        elif item[0] == _RECV:
                            self._input_replies.put(_DISCONNECT)
                        elif item[0] == _DONE:
                            self._mailbox.close()
                            return
            self._mailbox.close()
            # Whatever the abandoned thread waits for next, it must not wait for ever.
            self._replies.put(False)
            self._input_replies.put(_DISCONNECT)
            logger.warning(
                "bridgeway: the WSGI app did not return within %.1fs of the request being"
                " cancelled; its thread is left to finish on its own",
                self._adapter.cancel_timeout,
            )

    # ---------------------------------------------------------------- thread side

    def _post(self, item: tuple[Any, ...]) -> None:
        if not self._mailbox.post(item):
            self.halt = True

    def _post_send(self, messages: list[Message]) -> None:
        """Post messages for send(); the loop acknowledges each post once sent."""
        if self._mailbox.post((_SEND, messages, True)):
            self._unacked += 1
        else:
            self.halt = True

    def _wait_acks(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` posted sends are still unacknowledged."""
        while self._unacked > keep:
            self._unacked -= 1
            if not self._replies.get():
                self.halt = True

    def _pull(self) -> tuple[bytes, bool]:
        """wsgi.input asks for the next body chunk (worker thread, or any thread)."""
        if self.halt:
            raise ClientDisconnected("the client disconnected before the request body ended")
        replies = self._input_replies
        if replies.empty() and not self._mailbox.post((_RECV,)):
            raise ClientDisconnected("the request is over; its body can no longer be read")
        reply = replies.get()
        if reply is _DISCONNECT:
            raise ClientDisconnected("the client disconnected before the request body ended")
        self._consumed += 1
        if self.paused and self._delivered - self._consumed <= _PREFETCH // 2:
            self._mailbox.post((_RECV,))  # room again: wake the receiver
        return reply  # type: ignore[no-any-return]

    def _thread_main(self) -> Callable[[], None]:
        """Run the app, stream its response, close it. Returns the "done" post, which
        the pool runs once this thread is idle again."""
        error: BaseException | None = None
        iterable: Iterable[bytes] | None = None
        self._started = True
        if self.halt:  # cancelled while it waited for a thread: never start the app
            return lambda: self._post((_DONE, None))
        try:
            iterable = self._adapter.app(self._environ, self._start_response)
            self._iterate(iterable)
        except BaseException as exc:
            error = self._fail(exc)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                # close() runs after the last send() returned (W2A-RESP-13); a body
                # without close() (a plain list) needs no such wait.
                self._wait_acks()
                try:
                    close()
                except BaseException:
                    # PEP 3333: close() runs whatever happened; its failure cannot change
                    # a response already on its way, so it is only logged.
                    logger.exception("bridgeway: close() of the WSGI response iterable raised")
        del iterable
        self._environ = None  # type: ignore[assignment]  # drop the app's references
        return lambda: self._post((_DONE, error))

    def _iterate(self, iterable: Iterable[bytes]) -> None:
        if (
            type(iterable) in (list, tuple)
            and len(iterable) == 1  # type: ignore[arg-type]
            and self._cl is None
            and not self._headers_sent
            and self._status is not None
        ):
            # PEP 3333 §Handling the Content-Length Header: len() of a list or tuple is
            # exact, so a one-element body gets a length instead of chunking (W2A-RESP-16).
            chunk = iterable[0]  # type: ignore[index]
            if type(chunk) is bytes and chunk and not self._no_body_status():
                self._set_length(len(chunk))
        try:
            iterator = iter(iterable)
        except TypeError:
            raise ProtocolError(
                f"the WSGI app returned {type(iterable).__name__!r}, which is not an iterable"
                " of bytes (PEP 3333 §Specification Details)"
            ) from None
        for chunk in iterator:
            if type(chunk) is not bytes and not isinstance(chunk, bytes):
                raise TypeError(
                    f"the WSGI app yielded {type(chunk).__name__!r}; response body chunks"
                    " must be bytes (PEP 3333 §Unicode Issues)"
                )
            if chunk:
                self._emit(chunk)
            if self.halt or self._complete:
                break
        self._finish()

    def _no_body_status(self) -> bool:
        return self._status in (204, 304)

    def _set_length(self, length: int) -> None:
        self._headers.append((b"content-length", str(length).encode()))
        self._cl = self._remaining = length

    def _start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self._headers_sent:
                    # PEP 3333: too late to change the response; re-raise in the app.
                    raise exc_info[1].with_traceback(exc_info[2])  # type: ignore[union-attr]
            finally:
                exc_info = None  # no reference to the failing frame is kept (W2A-RESP-6)
        elif self._status is not None:
            raise ProtocolError(
                "start_response() was called a second time without exc_info"
                " (PEP 3333 §The start_response() Callable)"
            )
        code = parse_wsgi_status(status)
        if type(headers) is not list:
            raise TypeError(
                f"start_response(): headers must be a list of (name, value) tuples, got"
                f" {type(headers).__name__} (PEP 3333 §The start_response() Callable)"
            )
        kept: list[tuple[str, str]] = []
        length: str | None = None
        for header in headers:
            if type(header) is not tuple or len(header) != 2:
                raise TypeError(f"start_response(): header {header!r} is not a 2-tuple")
            name, value = check_wsgi_header(*header)
            lower = name.lower()
            if lower == "content-length":
                value = value.strip()
                if not value.isdigit():
                    raise ValueError(f"start_response(): invalid Content-Length {value!r}")
                if length is not None:
                    if int(value) != int(length):
                        raise ValueError("start_response(): conflicting Content-Length headers")
                    continue  # an identical duplicate is dropped (HTTP-10)
                length = value
                continue  # appended once, below, after the other headers
            elif is_hop_by_hop(lower.encode("latin-1")):
                if self._adapter.strict_headers:
                    raise ValueError(
                        f"start_response(): hop-by-hop header {name!r} belongs to the server"
                        " (PEP 3333 §Other HTTP Features)"
                    )
                logger.warning("bridgeway: dropped hop-by-hop response header %r", name)
                continue
            # A field value has no leading or trailing whitespace (RFC 9110 §5.5);
            # Django's Set-Cookie values start with a space, which h11 refuses.
            kept.append((name, value.strip(" \t")))
        self._status = code
        self._headers = wsgi_headers_to_asgi(kept)
        self._no_body = code in (204, 304) or self._environ["REQUEST_METHOD"] == "HEAD"
        if length is None:
            self._cl = self._remaining = None
        else:
            self._headers.append((b"content-length", length.encode()))
            self._cl = self._remaining = int(length)
        return self._write

    def _write(self, data: bytes) -> None:
        """The PEP 3333 write() callable: blocks until send() has taken the bytes."""
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if self._status is None:
            raise ProtocolError("write() was called before start_response()")
        if self._complete:
            raise ProtocolError("write() was called after the response was complete")
        if self.halt:
            raise ClientDisconnected("the client disconnected; write() cannot deliver")
        if data:
            self._emit(data)
            self._wait_acks()

    def _start_message(self) -> Message:
        self._headers_sent = True
        return {"type": "http.response.start", "status": self._status, "headers": self._headers}

    def _emit(self, chunk: bytes) -> None:
        if self._status is None:
            raise ProtocolError(
                "the WSGI app produced body bytes before calling start_response()"
                " (PEP 3333 §The start_response() Callable)"
            )
        messages: list[Message] = []
        if not self._headers_sent:
            messages.append(self._start_message())
        if self._no_body:
            if self._status in (204, 304):
                logger.warning(
                    "bridgeway: dropped body bytes of a %d response (RFC 9110)", self._status
                )
            # HEAD: the headers are out; the body is never sent (HTTP-03).
            messages.append({"type": "http.response.body", "body": b"", "more_body": False})
            self._complete = True
            self._post_send(messages)
            return
        remaining = self._remaining
        if remaining is not None and len(chunk) >= remaining:
            if len(chunk) > remaining:
                logger.error(
                    "bridgeway: the WSGI app sent more bytes than its Content-Length (%d);"
                    " the excess was cut (PEP 3333 §Handling the Content-Length Header)",
                    self._cl,
                )
                chunk = chunk[:remaining]
            self._remaining = 0
            self._complete = True
            messages.append({"type": "http.response.body", "body": chunk, "more_body": False})
            self._wait_acks()
            self._post_send(messages)
            return
        if remaining is not None:
            self._remaining = remaining - len(chunk)
        messages.append({"type": "http.response.body", "body": chunk, "more_body": True})
        # Backpressure with a window of two: this chunk may be posted while the one
        # before is still being sent, never further ahead (W2A-RESP-10). The window
        # lets the loop take two chunks per wake-up when the app is fast.
        self._wait_acks(1)
        self._post_send(messages)

    def _finish(self) -> None:
        if self.halt or self._complete:
            return
        if self._status is None:
            raise ProtocolError(
                "the WSGI app returned without calling start_response()"
                " (PEP 3333 §The start_response() Callable)"
            )
        if self._remaining and not self._no_body:
            raise ProtocolError(
                f"the WSGI app sent fewer bytes than its Content-Length ({self._cl});"
                " the response is aborted (PEP 3333 §Handling the Content-Length Header)"
            )
        self._complete = True
        if not self._headers_sent:
            self._post_send([self._start_message(), {"type": "http.response.body"}])
        elif not self._mailbox.amend_last(_fold_end):
            self._post_send([{"type": "http.response.body"}])

    def _fail(self, exc: BaseException) -> BaseException | None:
        """An exception escaped the app, its iterable or a protocol check."""
        if self.halt:
            # The client is gone; errors from here on are its consequence.
            logger.debug("bridgeway: WSGI app stopped after the client left: %r", exc)
            return None
        if not self._headers_sent and not self._complete:
            logger.error(
                "bridgeway: the WSGI app raised before sending headers; answered 500",
                exc_info=exc,
            )
            self._complete = True
            self._post_send(plain_response(500, _ERROR_BODY))
            return None
        if isinstance(exc, Exception):
            logger.error(
                "bridgeway: the WSGI app raised after the response headers were sent;"
                " the response is aborted",
                exc_info=exc,
            )
        # Raising out of the ASGI app makes the server abort the connection, so a
        # truncated body is never taken for a complete one (W2A-RESP-12).
        return exc


def _fold_end(item: tuple[Any, ...]) -> bool:
    """Make an untaken body post the final one (more_body=False)."""
    if item[0] != _SEND:
        return False
    item[1][-1]["more_body"] = False
    return True
