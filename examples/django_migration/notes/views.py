"""The legacy Django views: pages, a streamed CSV export, and two probes for the tests."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render

from .models import Note


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "notes/index.html", {"notes": Note.objects.all()})


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "notes/detail.html", {"note": get_object_or_404(Note, pk=pk)})


def export_csv(request: HttpRequest) -> StreamingHttpResponse:
    """All notes as CSV, one row per chunk, read from a server-side cursor."""

    def rows() -> Iterator[str]:
        yield "id,title,created\n"
        for note in Note.objects.iterator(chunk_size=100):
            title = note.title.replace('"', '""')
            yield f'{note.pk},"{title}",{note.created.isoformat()}\n'

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = "attachment; filename=notes.csv"
    return response


# --- probes the tests use --------------------------------------------------------------

_releases: dict[str, threading.Event] = {}
_releases_lock = threading.Lock()


def _release_event(token: str) -> threading.Event:
    with _releases_lock:
        return _releases.setdefault(token, threading.Event())


def held_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Sends a first line, then waits (up to 10 s) for /stream/release/ before the last.

    A client that gets the first line before it asked for the release has seen the
    response arrive incrementally: the last chunk did not exist yet.
    """
    token = request.GET.get("token", "")
    event = _release_event(token)

    def lines() -> Iterator[bytes]:
        yield b"first\n"
        released = event.wait(timeout=10.0)
        with _releases_lock:
            _releases.pop(token, None)
        yield b"last: released\n" if released else b"last: timed out\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


def release_stream(request: HttpRequest) -> HttpResponse:
    _release_event(request.GET.get("token", "")).set()
    return HttpResponse("released\n", content_type="text/plain")


_counts = {"started": 0, "finished": 0}
_counts_lock = threading.Lock()


def _count(key: str) -> None:
    with _counts_lock:
        _counts[key] += 1


request_started.connect(lambda **kwargs: _count("started"), weak=False)
request_finished.connect(lambda **kwargs: _count("finished"), weak=False)


def open_database_files() -> int:
    """How many file descriptors of this process point at the SQLite database file."""
    database = os.path.realpath(settings.DATABASES["default"]["NAME"])
    fd_dir = Path("/proc/self/fd")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            if os.path.realpath(fd.readlink()) == database:
                count += 1
        except OSError:  # closed between the listing and the readlink
            continue
    return count


def connection_report(request: HttpRequest) -> JsonResponse:
    """Database files open now, and requests started/finished (Django's signals).

    This view touches no database: in a process that closes its connections after each
    request, nothing has the file open while it runs.
    """
    with _counts_lock:
        counts = dict(_counts)
    return JsonResponse({"open_database_files": open_database_files(), **counts})
