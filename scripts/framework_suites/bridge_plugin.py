"""pytest plugin: route a framework's own test suite through a bridgeway double bridge.

Loaded with ``-p bridge_plugin`` (this folder on PYTHONPATH). Environment:

BRIDGE_MODE     ``native`` (nothing patched, outcomes recorded) or ``bridged``.
BRIDGE_HOOK     where the app is wrapped:
                  WSGI suites (Flask, Werkzeug): ``run_wsgi_app`` (default) wraps the app
                  werkzeug.test.run_wsgi_app calls (every werkzeug/Flask test client
                  request); ``flask_call`` wraps Flask.__call__ (Flask's suite only: every
                  call of a Flask app as a WSGI app, test client or not).
                  ASGI suites (Starlette, FastAPI): ``testclient`` (default) wraps the app
                  given to starlette.testclient.TestClient(...), and the app given to
                  httpx's / httpx2's ASGITransport(...); ``transport`` wraps it one level
                  down, in TestClient's _TestClientTransport (``client.app`` stays the
                  app itself).
BRIDGE_CACHE    ``per_app`` (default): one double bridge per app object, reused (kept on
                the app, so it is freed with it);
                ``per_call``: a new double bridge for every call (run_wsgi_app,
                Flask.__call__) or every client (ASGI hooks).
BRIDGE_W2A_OPTS / BRIDGE_A2W_OPTS
                JSON objects of keyword arguments for WSGIToASGI / ASGIToWSGI (default:
                none, the defaults a user gets), e.g. BRIDGE_A2W_OPTS='{"wait_background": true}'.
BRIDGE_RESULTS  a path: the outcome of every test is written there as JSON
                ({nodeid: "passed" | "failed" | "skipped" | "xfailed" | "xpassed" | "error"}).

WSGI apps go through ``ASGIToWSGI(WSGIToASGI(app))``, ASGI apps through
``WSGIToASGI(ASGIToWSGI(app))``.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest

MODE = os.environ.get("BRIDGE_MODE", "native")
CACHE = os.environ.get("BRIDGE_CACHE", "per_app")
RESULTS = os.environ.get("BRIDGE_RESULTS")

_outcomes: dict[str, str] = {}


class _BridgeCache:
    """One bridge per app object. The bridge is kept on the app itself where it can be
    (app and bridge then die together), else in a dict by id (kept alive: few apps)."""

    def __init__(self, make: Any, attr: str) -> None:
        self.make = make
        self.attr = attr
        self.strong: dict[int, tuple[Any, Any]] = {}

    def __call__(self, app: Any) -> Any:
        if CACHE == "per_call":
            return self.make(app)
        bridged = getattr(app, self.attr, None)
        if bridged is not None and _is_bridged(bridged):  # not a proxy's __getattr__
            return bridged
        bridged = self.make(app)
        try:
            setattr(app, self.attr, bridged)
        except (AttributeError, TypeError):  # no instance attributes (a bound method)
            held = self.strong.get(id(app))
            if held is not None and held[0] is app:
                return held[1]
            self.strong[id(app)] = (app, bridged)
        return bridged


W2A_OPTS: dict[str, Any] = json.loads(os.environ.get("BRIDGE_W2A_OPTS") or "{}")
A2W_OPTS: dict[str, Any] = json.loads(os.environ.get("BRIDGE_A2W_OPTS") or "{}")


def _double_wsgi(app: Any) -> Any:
    from bridgeway import ASGIToWSGI, WSGIToASGI

    return ASGIToWSGI(WSGIToASGI(app, **W2A_OPTS), **A2W_OPTS)


def _double_asgi(app: Any) -> Any:
    from bridgeway import ASGIToWSGI, WSGIToASGI

    return WSGIToASGI(ASGIToWSGI(app, **A2W_OPTS), **W2A_OPTS)


def _is_bridged(app: Any) -> bool:
    from bridgeway import ASGIToWSGI, WSGIToASGI

    return isinstance(app, (ASGIToWSGI, WSGIToASGI))


wsgi_bridge = _BridgeCache(_double_wsgi, "_bridge_plugin_wsgi")
asgi_bridge = _BridgeCache(_double_asgi, "_bridge_plugin_asgi")


def _patch_wsgi(hook: str) -> None:
    if hook == "run_wsgi_app":
        import werkzeug.test

        original = werkzeug.test.run_wsgi_app

        @functools.wraps(original)
        def run_wsgi_app(app: Any, environ: Any, buffered: bool = False) -> Any:
            if not _is_bridged(app):
                app = wsgi_bridge(app)
            return original(app, environ, buffered=buffered)

        werkzeug.test.run_wsgi_app = run_wsgi_app  # type: ignore[assignment]
    elif hook == "flask_call":
        import flask

        def __call__(self: Any, environ: Any, start_response: Any) -> Any:
            bridged = wsgi_bridge(self._bridge_plugin_inner)
            return bridged(environ, start_response)

        def _inner(self: Any) -> Any:
            # The app's own wsgi_app at call time (tests replace it with middleware).
            app = self

            def inner(environ: Any, start_response: Any) -> Any:
                return app.wsgi_app(environ, start_response)

            return inner

        # One stable inner callable per Flask app, so per_app caching works.
        flask.Flask._bridge_plugin_inner = functools.cached_property(_inner)  # type: ignore[attr-defined]
        flask.Flask._bridge_plugin_inner.__set_name__(flask.Flask, "_bridge_plugin_inner")  # type: ignore[attr-defined]
        flask.Flask.__call__ = __call__  # type: ignore[method-assign]
    else:
        raise pytest.UsageError(f"unknown WSGI BRIDGE_HOOK {hook!r}")


def _patch_asgi(hook: str) -> None:
    import starlette.testclient as tc

    if hook == "testclient":
        original = tc.TestClient.__init__

        @functools.wraps(original)
        def __init__(self: Any, app: Any, *args: Any, **kwargs: Any) -> None:
            original(self, asgi_bridge(app), *args, **kwargs)

        tc.TestClient.__init__ = __init__  # type: ignore[method-assign]
    elif hook == "transport":
        original_t = tc._TestClientTransport.__init__

        @functools.wraps(original_t)
        def __init_t__(self: Any, app: Any, *args: Any, **kwargs: Any) -> None:
            original_t(self, asgi_bridge(app), *args, **kwargs)

        tc._TestClientTransport.__init__ = __init_t__  # type: ignore[method-assign]
    else:
        raise pytest.UsageError(f"unknown ASGI BRIDGE_HOOK {hook!r}")
    for name in ("httpx", "httpx2"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        transport = getattr(module, "ASGITransport", None)
        if transport is None:
            continue
        original_a = transport.__init__

        def __init_a__(
            self: Any, app: Any, *args: Any, _orig: Any = original_a, **kwargs: Any
        ) -> None:
            _orig(self, asgi_bridge(app), *args, **kwargs)

        transport.__init__ = __init_a__


def pytest_configure(config: pytest.Config) -> None:
    if MODE == "native":
        return
    if MODE != "bridged":
        raise pytest.UsageError(f"BRIDGE_MODE must be 'native' or 'bridged', not {MODE!r}")
    kind = os.environ.get("BRIDGE_KIND")
    if kind == "wsgi":
        _patch_wsgi(os.environ.get("BRIDGE_HOOK", "run_wsgi_app"))
    elif kind == "asgi":
        _patch_asgi(os.environ.get("BRIDGE_HOOK", "testclient"))
    else:
        raise pytest.UsageError("BRIDGE_KIND must be 'wsgi' or 'asgi'")


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"bridge_plugin: mode={MODE} kind={os.environ.get('BRIDGE_KIND')}"
        f" hook={os.environ.get('BRIDGE_HOOK', 'default')} cache={CACHE}"
        f" w2a_opts={W2A_OPTS} a2w_opts={A2W_OPTS}"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid
    previous = _outcomes.get(nodeid)
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        if previous != "error":
            _outcomes[nodeid] = outcome
    elif report.failed:
        # setup or teardown failed: the test does not pass whatever its call did.
        _outcomes[nodeid] = "error"
    elif report.skipped and report.when == "setup":
        _outcomes[nodeid] = "xfailed" if hasattr(report, "wasxfail") else "skipped"


def pytest_sessionfinish(session: pytest.Session) -> None:
    if RESULTS:
        with open(RESULTS, "w") as f:
            json.dump(_outcomes, f, indent=0, sort_keys=True)
