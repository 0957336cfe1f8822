"""An MCP server mounted inside an existing Flask app, served by a WSGI server.

    gunicorn -c examples/mcp_in_flask/gunicorn.conf.py -b 127.0.0.1:8000
    gunicorn -k gthread --threads 8 examples.mcp_in_flask.app:application
    uvicorn examples.mcp_in_flask.app:asgi_app        # the same routes on an ASGI server

The Flask app (a to-do list, ``/`` and ``/todos``) is the project that already exists.
The MCP server (the official SDK's ``MCPServer``, served over streamable HTTP) exposes
the same to-do list to MCP clients at ``/mcp``. ``WSGIDispatcher`` sends ``/mcp`` to
the MCP app through ``ASGIToWSGI`` and everything else to Flask, unchanged.

Two settings matter (README.md explains both):

- ``loop_mode="shared"``: the MCP app's lifespan enters its session manager
  (``session_manager.run()``), which may run only once per process and keeps every
  session on one event loop. Shared mode runs all its requests on one loop per process,
  with one lifespan, as an ASGI server does.
- ``MCP_STATELESS=1`` (``stateless_http=True``): no MCP sessions, so any worker process
  can answer any request (``gunicorn -w 4``), and no GET stream pins a worker thread
  per connected client. Stateful (the SDK's default) needs one worker process.

The to-do list lives in memory, per process: the MCP tools and the Flask views share it
(in a real project it is your database).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

from bridgeway import WSGIDispatcher

# --- the existing Flask app ------------------------------------------------------------


class Todo(BaseModel):
    id: int
    title: str
    done: bool = False


_todos: dict[int, Todo] = {}
_todos_lock = threading.Lock()  # Flask views and MCP tools run in different threads
_ids = itertools.count(1)


def add_todo(title: str) -> Todo:
    with _todos_lock:
        todo = Todo(id=next(_ids), title=title)
        _todos[todo.id] = todo
        return todo


def all_todos() -> list[Todo]:
    with _todos_lock:
        return list(_todos.values())


flask_app = Flask(__name__)


@flask_app.get("/")
def index() -> ResponseReturnValue:
    return jsonify(app="Flask", todos=len(all_todos()), mcp_endpoint=request.host_url + "mcp")


@flask_app.get("/todos")
def list_todos_view() -> ResponseReturnValue:
    return jsonify([todo.model_dump() for todo in all_todos()])


@flask_app.post("/todos")
def add_todo_view() -> ResponseReturnValue:
    title = (request.get_json(silent=True) or {}).get("title")
    if not isinstance(title, str) or not title:
        abort(400, "a JSON body with a non-empty 'title' is required")
    return jsonify(add_todo(title).model_dump()), 201


# --- the MCP server --------------------------------------------------------------------


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
    "todos",
    instructions="The to-do list of the Flask app this MCP server is mounted in.",
    lifespan=lifespan,
)


@mcp.tool()
def add(title: str) -> Todo:
    """Add a to-do item."""
    return add_todo(title)


@mcp.tool()
def list_todos(search: str = "") -> list[Todo]:
    """The to-do items whose title contains ``search`` (all of them by default)."""
    return [todo for todo in all_todos() if search in todo.title]


class Review(BaseModel):
    reviewed: int
    finished_at: float  # time.time() when the tool returned


@mcp.tool()
async def review(ctx: Context[Lifespan], search: str = "", pause: float = 0.5) -> Review:
    """Review the to-do items whose title contains ``search``, one by one, reporting
    progress after each: a slow job whose progress notifications stream to the client
    while it runs."""
    todos = [todo for todo in all_todos() if search in todo.title]
    for n, todo in enumerate(todos, 1):
        await ctx.report_progress(n, len(todos), f"reviewed {todo.title!r}")
        await asyncio.sleep(pause)
    return Review(reviewed=len(todos), finished_at=time.time())


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
# streamable_http_path="/": the dispatcher below mounts the app at /mcp. Its default
# transport security accepts the Host headers 127.0.0.1:*, localhost:* and [::1]:* only;
# behind a domain, pass transport_security=TransportSecuritySettings(allowed_hosts=[...]).
mcp_app = mcp.streamable_http_app(streamable_http_path="/", stateless_http=STATELESS)

# --- one WSGI app for both -------------------------------------------------------------

application = WSGIDispatcher(
    {"/mcp": mcp_app},
    default=flask_app,
    asgi_options={"loop_mode": "shared"},  # one event loop, one MCP lifespan per process
)

# The same routes for an ASGI server (uvicorn): the MCP app runs natively, Flask through
# WSGIToASGI. The tests compare the two.
asgi_app = application.as_asgi()
