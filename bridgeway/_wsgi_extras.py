"""The two helper objects every WSGIToASGI environ carries: ``wsgi.errors`` and
``wsgi.file_wrapper`` (PEP 3333 §Input and Error Streams, §Optional Platform-Specific
File Handling)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ._protocol import file_chunks


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


class FileWrapper:
    """``wsgi.file_wrapper``: reads ``blksize`` bytes at a time from the file's current
    position until EOF; ``close()`` closes the file (EXT-01). It reads in the worker
    thread, like any other response iterable."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        return file_chunks(self.filelike, self.blksize)
