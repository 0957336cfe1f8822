"""examples/flask_on_asgi: a Flask app mounted in FastAPI under /legacy, on real uvicorn."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.live.servers import ServerProcess, running_server

pytestmark = pytest.mark.servers

APP = "examples.flask_on_asgi.app:app"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with running_server("uvicorn-h11", APP, ready_path="/api/status") as srv:
        yield srv


def links(html: str) -> list[str]:
    return re.findall(r'(?:href|action)="([^"]+)"', html)


def test_links_built_by_flask_carry_the_mount_prefix(client: httpx.Client) -> None:
    response = client.get("/legacy/")
    assert response.status_code == 200
    assert links(response.text) == [
        "/legacy/",
        "/legacy/hello/World",
        "/legacy/download?rows=1000",
        "/legacy/whoami",
        "/legacy/greet",
        "/legacy/upload",
    ]
    assert f"Served through bridgeway at {client.base_url}/legacy/" in response.text
    # ... and following one of them reaches the Flask view.
    hello = client.get("/legacy/hello/World")
    assert "<h1>Hello, World!</h1>" in hello.text


def test_fastapi_and_flask_routes_side_by_side(client: httpx.Client) -> None:
    assert client.get("/api/status").json() == {"served_by": "FastAPI", "legacy_app": "/legacy/"}
    assert client.get("/api/square/12").json() == {"n": 12, "square": 144}
    redirect = client.get("/")
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/legacy/")
    assert client.get("/legacy/").headers["content-type"] == "text/html; charset=utf-8"
    # A path outside both answers FastAPI's 404; one under /legacy, Flask's own 404 page.
    assert client.get("/nowhere").json() == {"detail": "Not Found"}
    missing = client.get("/legacy/nowhere")
    assert missing.status_code == 404
    assert '<p class="error" id="code">404</p>' in missing.text
    assert "no page at /nowhere" in missing.text


def test_error_handler_answers_with_the_apps_page(client: httpx.Client) -> None:
    response = client.get("/legacy/teapot")
    assert response.status_code == 418
    assert "this app brews no coffee" in response.text


def test_form_post_and_session_survive_requests(client: httpx.Client) -> None:
    greeted = client.post("/legacy/greet", data={"name": "Ada"})
    assert "<h1>Nice to meet you, Ada!</h1>" in greeted.text
    cookie = greeted.headers["set-cookie"]
    assert cookie.startswith("session=")
    assert "HttpOnly" in cookie
    first = client.get("/legacy/whoami").json()
    second = client.get("/legacy/whoami").json()
    assert first["name"] == second["name"] == "Ada"
    assert second["visits"] == first["visits"] + 1
    # A client without the cookie is a stranger.
    with httpx.Client(base_url=client.base_url, timeout=10.0) as other:
        assert other.get("/legacy/whoami").json() == {"name": None, "visits": 1}


def test_file_upload(client: httpx.Client) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    response = client.post("/legacy/upload", files={"file": ("random.bin", data)})
    assert response.status_code == 200
    assert '<dd id="filename">random.bin</dd>' in response.text
    assert f'<dd id="size">{len(data)}</dd>' in response.text
    assert f'<dd id="sha256">{hashlib.sha256(data).hexdigest()}</dd>' in response.text
    assert client.post("/legacy/upload", files={}).status_code == 400


def test_streamed_download(client: httpx.Client) -> None:
    with client.stream("GET", "/legacy/download", params={"rows": 20_000}) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"  # not buffered to measure it
        assert "content-length" not in response.headers
        assert response.headers["content-disposition"] == "attachment; filename=numbers.csv"
        chunks = list(response.iter_raw())
    body = b"".join(chunks)
    lines = body.decode().splitlines()
    assert len(lines) == 20_001
    assert lines[0] == "n,square,cube"
    assert lines[-1] == f"19999,{19999**2},{19999**3}"
    assert len(chunks) > 1
