"""An MCP server over the project's Django models, mounted at /mcp by ``wsgi.py``.

The tools use the Django ORM the way ``api.py`` does: ORM calls run in a worker thread
(the ORM is sync and must not run on the event loop), inside ``django_db()``, which
closes the connection that thread opened, since those threads are not Django requests.
The MCP SDK runs a plain ``def`` tool in a worker thread by itself; an ``async def``
tool hands its ORM work over with ``anyio.to_thread.run_sync``.

Import this module after ``django.setup()`` (``wsgi.py`` does).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

import anyio
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from .api import NoteOut, django_db
from .notes.models import Note


class Lifespan(TypedDict):
    started_at: float
    pid: int


#: How many times the MCP lifespan started in this process: 1 under loop_mode="shared".
lifespans_started = 0


@asynccontextmanager
async def lifespan(server: MCPServer[Lifespan]) -> AsyncIterator[Lifespan]:
    """Entered by ``session_manager.run()``, itself entered by the ASGI lifespan."""
    global lifespans_started
    lifespans_started += 1
    yield {"started_at": time.time(), "pid": os.getpid()}


mcp = MCPServer(
    "notes",
    instructions="The notes of the Django project this MCP server is mounted in.",
    lifespan=lifespan,
)


def matching_notes(search: str) -> list[NoteOut]:
    with django_db():
        notes = Note.objects.filter(title__contains=search) if search else Note.objects.all()
        return [NoteOut.model_validate(note) for note in notes]


@mcp.tool()
def add_note(title: str, body: str = "") -> NoteOut:
    """Add a note (a row of the Django model, visible at / at once)."""
    with django_db():
        return NoteOut.model_validate(Note.objects.create(title=title, body=body))


@mcp.tool()
def list_notes(search: str = "") -> list[NoteOut]:
    """The notes whose title contains ``search`` (all of them by default)."""
    return matching_notes(search)


class Export(BaseModel):
    exported: int
    csv: str
    finished_at: float  # time.time() when the tool returned


@mcp.tool()
async def export_notes(ctx: Context[Lifespan], search: str = "", pause: float = 0.5) -> Export:
    """Export the notes whose title contains ``search`` as CSV, one by one, reporting
    progress after each: a slow job whose progress notifications stream to the client
    while it runs."""
    notes = await anyio.to_thread.run_sync(matching_notes, search)
    rows = ["id,title"]
    for n, note in enumerate(notes, 1):
        rows.append(f"{note.id},{note.title}")
        await ctx.report_progress(n, len(notes), f"exported {note.title!r}")
        await asyncio.sleep(pause)
    return Export(exported=len(notes), csv="\n".join(rows), finished_at=time.time())


class ServerInfo(BaseModel):
    pid: int
    lifespan_started_at: float
    lifespans_started: int
    event_loop: int
    loop_thread: str


@mcp.tool()
async def server_info(ctx: Context[Lifespan], wait: float = 0.0) -> ServerInfo:
    """Where this call ran: the lifespan that served it and its event loop. ``wait``
    keeps the call open (to have several calls in flight at once)."""
    await asyncio.sleep(wait)
    state = ctx.request_context.lifespan_context  # set by the lifespan: it ran
    return ServerInfo(
        pid=state["pid"],
        lifespan_started_at=state["started_at"],
        lifespans_started=lifespans_started,
        event_loop=id(asyncio.get_running_loop()),
        loop_thread=threading.current_thread().name,
    )


STATELESS = os.environ.get("MCP_STATELESS", "") == "1"
# Mounted at /mcp by wsgi.py. The default transport security accepts the Host headers
# 127.0.0.1:*, localhost:* and [::1]:* only; behind a domain, pass
# transport_security=TransportSecuritySettings(allowed_hosts=[...]) (and keep Django's
# ALLOWED_HOSTS in step).
mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=STATELESS)
