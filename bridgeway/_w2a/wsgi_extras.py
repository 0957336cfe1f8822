"""``wsgi.errors`` of every WSGIToASGI environ (PEP 3333 §Input and Error Streams); its
``wsgi.file_wrapper`` is ``_protocol.FileWrapper``, shared with ASGIToWSGI."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable


class ErrorStream:
    """``wsgi.errors``: a text stream that goes to logging (the ``bridgeway.wsgi.errors``
    logger, level ERROR), one record per line; never to stdout (W2A-ENV-18)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger("bridgeway.wsgi.errors")
        self._local = threading.local()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors.write() takes str, not {type(text).__name__}")
        pending: str = getattr(self._local, "pending", "") + text
        *lines, rest = pending.split("\n")
        for line in lines:
            self._logger.error("%s", line)
        self._local.pending = rest
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        rest = getattr(self._local, "pending", "")
        if rest:
            self._local.pending = ""
            self._logger.error("%s", rest)
