"""The ASGI callable's types for the test apps (ASGI spec, "Applications"), written once.

The apps served by real servers import these too, so this module imports nothing from
bridgeway: a server's worker loads the app before anything else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = dict[str, Any]
# MutableMapping as Starlette's and bridgeway's own aliases, so these apps' send and receive
# are accepted where a framework or an adapter takes them.
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
