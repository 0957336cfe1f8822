"""Type aliases shared by both adapters (ASGI messages are plain dicts on the wire)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

Environ: TypeAlias = dict[str, Any]
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
OptExcInfo: TypeAlias = ExcInfo | tuple[None, None, None]
Headers: TypeAlias = list[tuple[bytes, bytes]]


if TYPE_CHECKING:
    # The WSGI protocol types everyone's code is checked against (typeshed's).
    from _typeshed.wsgi import StartResponse as StartResponse
else:
    StartResponse = Callable[..., Callable[[bytes], object]]

WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]
