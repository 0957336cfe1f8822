"""The bare round trip: the server judges (``_carry.Carried.bare``).

When WSGIToASGI calls this adapter itself (no WSGI middleware in between) and the app
runs on the server's loop (``_a2w.nested``), the app's own ``send()`` hands the
server's ``send()`` what WSGI cannot carry in order (``Forwarding._pass_on``), so that
the server judges it and the app's ``send()`` raises what the server raised, as
natively: trailers and whatever follows the final body are sent once WSGIToASGI's
response is out; an empty body message or a message that breaks the cycle before the
final body waits until the WSGI thread has passed the app's previous message
(``Relay.run``, ``_a2w.relay``, posts the release behind what that thread posted for
it), then goes out. bridgeway's own check (``_a2w.states``) is the floor: its
``ProtocolError`` reaches the app only when the server took the message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from .._types import Message
from ..errors import ProtocolError
from .relay import Future
from .request import Request

if TYPE_CHECKING:
    from .._upstream import Host


class Forwarding(Request):
    __slots__ = ("forwarding", "host")

    host: Host  # the WSGIToASGI request this one runs in
    forwarding: list[Future]  # messages waiting to be passed on (_pass_on)

    async def send(self, message: Message) -> None:
        carried = self.carried
        if carried is None or not carried.bare:
            await Request.send(self, message)
            return
        if message.get("type") == "http.response.trailers" and carried.trailers_done:
            broken = ProtocolError(
                "the ASGI app sent http.response.trailers after its last trailers"
                " (more_trailers=False) (ASGI extensions §HTTP Trailers)"
            )
        else:
            self.relay = False
            try:
                await Request.send(self, message)
            except ProtocolError as exc:
                # The message breaks the response cycle (_a2w.states): natively the
                # server's send() judges it (the TestClient's assertions, uvicorn's
                # RuntimeError), so it does here too; bridgeway's own error only when the
                # server took it (bridgeway's check is the floor).
                broken = exc
            else:
                if self.relay:
                    await self._pass_on(message)
                return
        await self._pass_on(message)
        raise broken

    async def _pass_on(self, message: Message) -> None:
        """Hand ``message`` to the server's send() in order, and wait for it: after the
        final body once WSGIToASGI sent its whole response; before it once the WSGI
        side (the WSGIToASGI thread) passed the point of the app's previous message
        (``Relay.run`` releases it)."""
        if not self.final:
            ready = Future()
            self.forwarding.append(ready)
            self._wake()
            await ready
        await self.host.send_nested(message, self.final)

    def release_forwarding(self, error: BaseException | None = None) -> None:
        waiting, self.forwarding = self.forwarding, []
        for ready in waiting:
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

    def _wait_step(self) -> Any:
        """After messages were passed on: the app's next event (as ``_early_step``)."""
        ready = self.ready = cast(Any, Future())
        if (
            self.chunk is not None
            or self.final
            or self.error is not None
            or self.task_done
            or self.forwarding
        ):
            ready.set_result(None)
        elif self.status and not self.yielded:
            # Its start came meanwhile (the WSGI side is still in the app call): out
            # early once the app awaits something, as after any start (_start_early).
            self.loop.call_soon(self._start_early, ready)
        return ready

    def _next_step(self) -> Any:
        ready = super()._next_step()
        if self.forwarding and not ready.done():
            ready.set_result(None)
        return ready

    def _early_step(self) -> Any:
        ready = super()._early_step()
        if self.forwarding and not ready.done():
            ready.set_result(None)
        return ready
