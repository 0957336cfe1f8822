"""Lifespan shutdown when the server gets SIGTERM (what Docker, systemd and Kubernetes
send): the recipes of docs/troubleshooting.md, tested (A2W-LIFE-07).

waitress and werkzeug's development server stop gracefully on SIGINT only; SIGTERM ends
them without the interpreter's exit hooks, so ``ASGIToWSGI``'s lifespan shutdown is
lost. The baseline row shows that; the other rows show each recipe running it.
"""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest

from tests.live.servers import PYTHON, ServerSpec, running_server

APP = "tests.live.sigterm_app:app"


def spec(name: str, argv: list[str]) -> ServerSpec:
    def make(app: str, port: int) -> list[str]:
        return [word.format(app=app, port=port, py=PYTHON) for word in argv]

    return ServerSpec(name, "wsgi", make, startup_timeout=40.0)


WAITRESS_SERVE = ["{py}", "-m", "waitress", "--listen=127.0.0.1:{port}", "{app}"]
CASES = [
    # (server, signal, shutdown expected)
    pytest.param(spec("waitress-serve", WAITRESS_SERVE), signal.SIGTERM, False, id="baseline"),
    pytest.param(spec("waitress-serve", WAITRESS_SERVE), signal.SIGINT, True, id="stopsignal"),
    pytest.param(
        spec(
            "waitress-script", ["{py}", "-m", "tests.live.run_wsgi", "waitress", "{app}", "{port}"]
        ),
        signal.SIGTERM,
        True,
        id="waitress-script",
    ),
    pytest.param(
        spec(
            "werkzeug-script", ["{py}", "-m", "tests.live.run_wsgi", "werkzeug", "{app}", "{port}"]
        ),
        signal.SIGTERM,
        True,
        id="werkzeug-script",
    ),
    pytest.param(
        spec(
            "bridgeway-serve-werkzeug",
            [
                "{py}",
                "-m",
                "bridgeway",
                "serve",
                "{app}",
                "--server",
                "werkzeug",
                "--port",
                "{port}",
            ],
        ),
        signal.SIGTERM,
        True,
        id="bridgeway-serve-werkzeug",
    ),
]


@pytest.mark.servers
@pytest.mark.parametrize(("server", "signum", "expected"), CASES)
def test_lifespan_shutdown_on_stop(
    tmp_path: Path, server: ServerSpec, signum: signal.Signals, expected: bool
) -> None:
    env = {"BRIDGEWAY_MARKERS": str(tmp_path)}
    with running_server(server, APP, env=env, stop_timeout=10.0) as proc:
        with urllib.request.urlopen(proc.url("/"), timeout=10) as reply:
            pid = int(reply.read())
        assert (tmp_path / f"startup-{pid}").exists()
        assert proc.proc is not None
        # the server process itself (werkzeug's reloader is off): pid is the app's
        proc.proc.send_signal(signum)
        proc.proc.wait(timeout=10.0)
    deadline = time.monotonic() + 5.0
    while not (tmp_path / f"shutdown-{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval, bounded by the deadline
    assert (tmp_path / f"shutdown-{pid}").exists() is expected
