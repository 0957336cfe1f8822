"""A FastAPI app served by a WSGI server (gunicorn, waitress, uWSGI, mod_wsgi, Passenger).

    gunicorn -k gthread --threads 8 examples.fastapi_on_wsgi.app:application
    waitress-serve --listen=127.0.0.1:8000 examples.fastapi_on_wsgi.app:application

The app is ordinary FastAPI: a lifespan opens an aiosqlite connection and keeps it in
``state``; async and sync endpoints; a pydantic body (a bad one gets a 422); a
``StreamingResponse``; a ``BackgroundTask`` that writes an audit row after the response
went out. ``ASGIToWSGI`` runs it on an event loop per WSGI worker thread, and runs the
lifespan once per loop, so every loop gets its own database connection: a loop-bound
resource is only ever used on its own loop.

The database file is ``$FASTAPI_EXAMPLE_DB`` or, by default, a file in a temporary
directory made for the process and removed when it exits.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, TypedDict

import aiosqlite
from fastapi import FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

from bridgeway import ASGIToWSGI

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL,
                                  thread TEXT NOT NULL, at REAL NOT NULL);
"""
#: How long the background task waits before writing its audit row: long enough to
#: show that the client got its answer first.
AUDIT_DELAY = 1.0


@functools.cache
def _temporary_directory() -> tempfile.TemporaryDirectory[str]:
    # Made on first use (after a pre-forking server forked), removed at interpreter exit.
    return tempfile.TemporaryDirectory(prefix="bridgeway-fastapi-example-")


def database_path() -> Path:
    configured = os.environ.get("FASTAPI_EXAMPLE_DB")
    if configured:
        return Path(configured)
    return Path(_temporary_directory().name) / "notes.sqlite3"


class State(TypedDict):
    db: aiosqlite.Connection
    loop_id: int


_lifespans = 0
_lifespans_lock = threading.Lock()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[State]:
    """Runs once per event loop: opens that loop's connection, closes it at shutdown."""
    global _lifespans
    with _lifespans_lock:
        _lifespans += 1
        loop_id = _lifespans
    async with aiosqlite.connect(database_path(), timeout=10.0) as db:
        await db.executescript(SCHEMA)
        await db.commit()
        yield {"db": db, "loop_id": loop_id}


app = FastAPI(title="FastAPI on a WSGI server", lifespan=lifespan)


def db_of(request: Request) -> aiosqlite.Connection:
    db: aiosqlite.Connection = request.state.db
    return db


class NoteIn(BaseModel):
    title: str = Field(min_length=1, max_length=100)
    body: str = ""


class Note(NoteIn):
    id: int


@app.get("/")
async def index(request: Request) -> dict[str, object]:
    """Which loop (and so which database connection) served this request."""
    return {
        "app": "FastAPI",
        "served_through": "bridgeway.ASGIToWSGI",
        "loop": request.state.loop_id,
        "lifespans_started": _lifespans,
        "thread": threading.current_thread().name,
    }


@app.post("/notes", status_code=201)
async def create_note(note: NoteIn, request: Request) -> JSONResponse:
    db = db_of(request)
    cursor = await db.execute(
        "INSERT INTO notes (title, body) VALUES (?, ?)", (note.title, note.body)
    )
    await db.commit()
    note_id = cursor.lastrowid
    assert note_id is not None
    # Runs after the response has been sent; the client does not wait for it.
    audit = BackgroundTask(write_audit, db, note_id)
    return JSONResponse(
        Note(id=note_id, **note.model_dump()).model_dump(), status_code=201, background=audit
    )


async def write_audit(db: aiosqlite.Connection, note_id: int) -> None:
    await asyncio.sleep(AUDIT_DELAY)
    await db.execute(
        "INSERT INTO audit (note_id, thread, at) VALUES (?, ?, ?)",
        (note_id, threading.current_thread().name, time.time()),
    )
    await db.commit()


@app.get("/notes")
async def list_notes(request: Request) -> list[Note]:
    async with db_of(request).execute("SELECT id, title, body FROM notes ORDER BY id") as rows:
        return [Note(id=i, title=t, body=b) async for i, t, b in rows]


@app.get("/notes/{note_id}/audit")
async def note_audit(note_id: int, request: Request) -> dict[str, object]:
    query = "SELECT thread, at FROM audit WHERE note_id = ?"
    async with db_of(request).execute(query, (note_id,)) as rows:
        entries = [{"thread": thread, "at": at} async for thread, at in rows]
    return {"note_id": note_id, "audit": entries}


@app.get("/sync/sha256")
def sync_sha256(
    text: str, rounds: Annotated[int, Query(ge=1, le=100_000)] = 1000
) -> dict[str, object]:
    """A plain ``def`` endpoint: FastAPI runs it in its thread pool, off the event loop."""
    digest = text.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    return {"sha256": digest.hex(), "rounds": rounds, "thread": threading.current_thread().name}


@app.get("/stream")
async def stream(
    lines: Annotated[int, Query(ge=0, le=100_000)] = 10,
    delay: Annotated[float, Query(ge=0, le=1)] = 0.0,
) -> StreamingResponse:
    """Lines produced one at a time; each reaches the WSGI server as its own chunk."""

    async def produce() -> AsyncIterator[bytes]:
        for n in range(lines):
            if delay:
                await asyncio.sleep(delay)
            yield f"line {n} at {time.time():.3f}\n".encode()

    return StreamingResponse(produce(), media_type="text/plain")


# The one line that matters: a WSGI callable for any WSGI server.
application = ASGIToWSGI(app)
