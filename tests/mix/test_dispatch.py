"""The dispatchers: prefix routing (pure), both hosts in process (Flask, FastAPI, raw WSGI,
Django), and acceptance on real servers (uvicorn and gunicorn, routing and fallback)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from werkzeug.test import Client

from bridgeway import ASGIDispatcher, WSGIDispatcher
from bridgeway._mix.routing import (
    Routes,
    mount_environ,
    mount_scope,
    normalize_prefix,
    prefix_matches,
    routing_path,
)
from tests.live.mixed_apps import REPLAY_LIMIT, mixed_asgi, raw_wsgi
from tests.live.mixed_django import django_mixed
from tests.live.servers import HOST, SERVERS, running_servers
from tests.support.w2a_driver import call, make_scope

if TYPE_CHECKING:
    pass

# ----------------------------------------------------------------- pure routing


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("/api", "/api", True),
        ("/api", "/api/", True),
        ("/api", "/api/x", True),
        ("/api", "/apix", False),
        ("/api", "/ap", False),
        ("/api", "/", False),
        ("/api/legacy", "/api/legacy/x", True),
        ("/api/legacy", "/api/legacyx", False),
    ],
    ids=lambda v: repr(v),
)
def test_prefix_matches_on_segment_boundaries(prefix: str, path: str, expected: bool) -> None:
    assert prefix_matches(prefix, path) is expected


@pytest.mark.parametrize("bad", ["", "/", "//", "api", "/a?b", "/a#b"])
def test_bad_prefixes_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace("?", r"\?")):
        normalize_prefix(bad)


def test_longest_prefix_wins_and_default_catches_the_rest() -> None:
    routes = Routes([("/api", "api"), ("/api/legacy/", "legacy"), ("/shop", "shop")], "root")
    assert routes.match("/api/legacy/x") == ("/api/legacy", "legacy")
    assert routes.match("/api/legacyx") == ("/api", "api")
    assert routes.match("/apix") == ("", "root")
    assert routes.apps() == ["legacy", "shop", "api", "root"]
    with pytest.raises(ValueError, match="given twice"):
        Routes([("/a", 1), ("/a/", 2)], None)


@pytest.mark.parametrize(
    ("root_path", "path", "prefix", "child_root", "child_path"),
    [
        ("", "/api/x", "/api", "/api", "/api/x"),
        ("", "/api", "/api", "/api", "/api"),
        ("/site", "/site/api/x", "/api", "/site/api", "/site/api/x"),
        # daphne-style: path without root_path is made spec-shaped (path includes root).
        ("/site", "/api/x", "/api", "/site/api", "/site/api/x"),
        ("/site/", "/site/api/x", "/api", "/site/api", "/site/api/x"),
    ],
)
def test_mount_scope_follows_the_asgi_spec(
    root_path: str, path: str, prefix: str, child_root: str, child_path: str
) -> None:
    scope = make_scope(path=path, root_path=root_path)
    assert routing_path(scope).startswith(prefix)
    child = mount_scope(scope, prefix)
    assert (child["root_path"], child["path"]) == (child_root, child_path)
    assert child["raw_path"] == scope["raw_path"]  # untouched, as Starlette's Mount
    assert scope["root_path"] == root_path  # the parent scope is not changed


@pytest.mark.parametrize(
    ("script", "path_info", "prefix", "expected"),
    [
        ("", "/api/x", "/api", ("/api", "/x")),
        ("", "/api", "/api", ("/api", "")),
        ("/site", "/api/", "/api", ("/site/api", "/")),
        ("/site/", "/api/x", "/api", ("/site/api", "/x")),
    ],
)
def test_mount_environ_moves_the_prefix_to_script_name(
    script: str, path_info: str, prefix: str, expected: tuple[str, str]
) -> None:
    child = mount_environ({"SCRIPT_NAME": script, "PATH_INFO": path_info}, prefix)
    assert (child["SCRIPT_NAME"], child["PATH_INFO"]) == expected


# ------------------------------------------------------- both hosts, in process

# path -> (app, the prefix it saw, the path below it, its url_for("x") link)
ROUTES = {
    "/": ("flask", "", "/", "/x"),
    "/api/": ("fastapi", "/api", "/", "/api/x"),
    "/apix": ("flask", "", "/apix", "/x"),
    "/api/legacy/x": ("raw", "/api/legacy", "/x", None),
    "/api/legacy": ("raw", "/api/legacy", "", None),
    "/shop/a": ("flask", "/shop", "/a", "/shop/x"),
}


def seen(data: dict[str, Any]) -> tuple[Any, ...]:
    """What the app reported, normalised to (app, prefix, path below it, link)."""
    if data["app"] == "flask":
        return ("flask", data["script_root"], data["path"], data["url_for"])
    if data["app"] == "fastapi":
        below = data["path"][len(data["root_path"]) :]
        return ("fastapi", data["root_path"], below, data["url_for"])
    return ("raw", data["SCRIPT_NAME"], data["PATH_INFO"], None)


@pytest.fixture
def mixed_wsgi() -> Iterator[WSGIDispatcher]:
    dispatcher = mixed_asgi.as_wsgi()
    yield dispatcher
    dispatcher.shutdown(5.0)  # the ASGIToWSGI made for FastAPI: its loops and lifespan


def test_wsgi_dispatcher_routes_every_path(mixed_wsgi: WSGIDispatcher) -> None:
    client = Client(mixed_wsgi)
    for path, expected in ROUTES.items():
        response = client.get(path, buffered=True)
        assert response.status_code == 200, path
        assert seen(response.json or {}) == expected, path
    # /api itself reaches FastAPI, which redirects to its root under the prefix.
    response = client.get("/api", buffered=True)
    assert (response.status_code, response.headers["location"]) == (307, "http://localhost/api/")


async def test_asgi_dispatcher_routes_every_path() -> None:
    for path, expected in ROUTES.items():
        peer = await call(mixed_asgi, make_scope(path=path))
        assert peer.status == 200, path
        assert seen(json.loads(peer.body)) == expected, path


def test_no_default_answers_404_and_dispatchers_convert_both_ways() -> None:
    only = WSGIDispatcher({"/raw": raw_wsgi})
    assert Client(only).get("/other", buffered=True).status_code == 404
    back = only.as_asgi()
    assert isinstance(back, ASGIDispatcher)
    assert back.as_wsgi().mounts == only.mounts


async def test_asgi_dispatcher_without_default_answers_404() -> None:
    peer = await call(ASGIDispatcher({"/raw": raw_wsgi}), make_scope(path="/other"))
    assert (peer.status, peer.body) == (404, b"Not Found")


# ------------------------------------------------------------- on real servers


def get(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        location = response.getheader("location")
    finally:
        conn.close()
    if location:
        return response.status, location
    return response.status, json.loads(data) if data else None


@pytest.mark.servers
def test_acceptance_on_uvicorn_and_gunicorn() -> None:
    launches = [
        (SERVERS["uvicorn-h11"], "tests.live.mixed_apps:mixed_asgi"),
        (SERVERS["gunicorn-gthread"], "tests.live.mixed_apps:mixed_wsgi"),
        (SERVERS["uvicorn-h11"], "tests.live.mixed_apps:fallback_asgi"),
        (SERVERS["gunicorn-gthread"], "tests.live.mixed_apps:fallback_wsgi"),
        # and trio: the same dispatcher under hypercorn's trio worker
        (SERVERS["hypercorn-trio"], "tests.live.mixed_apps:mixed_asgi"),
        (SERVERS["hypercorn-trio"], "tests.live.mixed_apps:fallback_asgi"),
    ]
    with running_servers(launches) as (mixed_a, mixed_w, fall_a, fall_w, mixed_t, fall_t):
        for server in (mixed_a, mixed_w, mixed_t):
            for path, expected in ROUTES.items():
                status, data = get(server.port, "GET", path)
                assert (status, seen(data)) == (200, expected), (server.spec.name, path)
            status, location = get(server.port, "GET", "/api")
            assert (status, location.endswith(f"{server.port}/api/")) == (307, True)
        for server in (fall_a, fall_w, fall_t):
            name = server.spec.name
            status, data = get(server.port, "POST", "/old/form", b"a=1&b=2")
            assert (status, data["app"], data["body"]) == (200, "raw", "a=1&b=2"), name
            status, data = get(server.port, "POST", "/echo", b"new")
            assert (status, data) == (200, {"app": "new", "body": "new"}), name
            status, data = get(server.port, "POST", "/old/form", b"x" * (REPLAY_LIMIT + 1))
            assert (status, data) == (404, {"detail": "Not Found"}), name


DJANGO = {
    "/legacy/page/a": {"app": "django", "script_prefix": "/legacy/", "reverse": "/legacy/page/x"},
    "/async/page/b": {"app": "django", "script_prefix": "/async/", "reverse": "/async/page/x"},
}


def test_django_reverse_carries_the_prefix_under_a_wsgi_server() -> None:
    dispatcher = django_mixed.as_wsgi()
    try:
        for path, expected in DJANGO.items():
            assert Client(dispatcher).get(path, buffered=True).json == expected, path
    finally:
        dispatcher.shutdown(5.0)


# Django's ASGIHandler runs on asyncio only (asgiref's sync_to_async).
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_django_reverse_carries_the_prefix_under_an_asgi_server(anyio_backend: str) -> None:
    for path, expected in DJANGO.items():
        peer = await call(django_mixed, make_scope(path=path), seconds=20)
        assert json.loads(peer.body) == expected, path
