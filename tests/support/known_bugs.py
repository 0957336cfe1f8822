"""Other projects' bugs and limitations that the suite expects, each tied to the versions
that have it.

A test that shows a server's own bug (reproduced without bridgeway, by a plain WSGI or
ASGI app) is marked with the ``KnownBug`` describing it. The mark is an
``xfail(strict=True)`` **only while the installed version is one of** ``affected``:

* the check runs against pinned versions (``constraints.txt``), so which tests are
  expected to fail is decided by that file, not by what PyPI serves today;
* when a pinned or latest version fixes the bug, the test XPASSes and the strict xfail
  fails the run with a reason that names the project, the installed version and this
  file, so the fix is seen and the bound narrowed (``affected="<2.8.9"``), never left
  in place;
* outside ``affected`` the test runs unmarked, so a version known to be fixed is held to
  the normal expectation.

``python`` as the project means the standard library (wsgiref) of the running CPython.
The WSGI hosts of ``tests/live/hosts.py`` are not in this venv: ``passenger`` and
``nginx`` are the versions their commands report, ``mod_wsgi`` the one in the mod_wsgi
venv. A host that is not installed has no version and none of its bugs applies (its
tests then fail, starting it); give host bugs a version range, never ``""``.
"""

from __future__ import annotations

import functools
import platform
import re
import subprocess
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version


class HostMissing(LookupError):
    """A WSGI host (Passenger, nginx, mod_wsgi) is not installed: scripts/hosts.sh."""


@functools.cache
def _host_version(project: str) -> Version:
    from tests.live.hosts import MODWSGI_VENV

    commands = {
        "passenger": (["passenger", "--version"], r"Passenger\S* (\d[\w.]*)"),
        "nginx": (["nginx", "-v"], r"nginx/(\d[\w.]*)"),
        "mod_wsgi": (
            [
                str(MODWSGI_VENV / "bin" / "python"),
                "-c",
                "from importlib.metadata import version; print(version('mod_wsgi'))",
            ],
            r"(\d[\w.]*)",
        ),
    }
    argv, pattern = commands[project]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise HostMissing(f"{project} is not installed (scripts/hosts.sh): {exc}") from exc
    found = re.search(pattern, done.stdout + done.stderr)
    if found is None:
        raise HostMissing(f"{project}: no version in {done.stdout + done.stderr!r}")
    return Version(found[1])


HOSTS = ("passenger", "nginx", "mod_wsgi")


def installed_version(project: str) -> Version:
    """The version of ``project`` in this environment (``python``: the interpreter; a
    WSGI host: see the module docstring). Raises when it is not installed."""
    if project == "python":
        return Version(platform.python_version())
    if project in HOSTS:
        return _host_version(project)
    return Version(metadata.version(project))


@dataclass(frozen=True)
class KnownBug:
    """A bug (or a documented limitation) of ``project`` seen in the versions
    ``affected`` (a PEP 440 specifier; ``""`` for every version)."""

    project: str
    affected: str
    text: str

    def applies(self) -> bool:
        """Is the installed version one that has this bug?"""
        try:
            version = installed_version(self.project)
        except HostMissing:
            return False
        return version in SpecifierSet(self.affected)

    @property
    def reason(self) -> str:
        version = installed_version(self.project)
        known = f"{self.project}{self.affected}" if self.affected else "all versions"
        return (
            f"{self.project} {version}: {self.text} [known in {known}; if this test passes,"
            f" {self.project} {version} has fixed it: exclude {version} from `affected`"
            " in tests/support/known_bugs.py]"
        )

    def marks(self) -> list[Any]:
        """The marks for a test that shows this bug: a strict xfail while it applies."""
        return [pytest.mark.xfail(strict=True, reason=self.reason)] if self.applies() else []


def marks_for(bug: KnownBug | None) -> list[Any]:
    return bug.marks() if bug is not None else []


# --- WSGI servers (ASGIToWSGI's conformance suite) -------------------------------------

UWSGI_EXC_INFO = KnownBug(
    "uwsgi",
    ">=2.0.26",
    "a start_response(..., exc_info) before any output sends the head and then closes with"
    " an empty body (plain WSGI reproduction: GET /plain/exc-info gives 'Content-Length: 9'"
    " and 0 body bytes)",
)
GRANIAN_ABORT = KnownBug(
    "granian",
    "<2.8.9",
    "when the WSGI iterable raises mid-stream, granian ends the chunked response normally,"
    " so a truncated body looks complete (plain WSGI reproduction: GET /plain/raise-mid ends"
    " with 0\\r\\n\\r\\n); fixed in granian 2.8.9",
)
GRANIAN_ABORT_BEFORE_HEAD = KnownBug(
    "granian",
    ">=2.8.9",
    "when the WSGI iterable raises mid-stream, granian sometimes closes the connection before"
    " even the head went out (a race: about 1 request in 10 under load, for a plain WSGI app"
    " too: GET /plain/raise-mid); tolerated where it applies, not an xfail, since the"
    " response never looks complete either way",
)
WSGIREF_CLOSE_FRAMED = KnownBug(
    "python",
    "",
    "wsgiref limitation: streamed responses are framed by closing the connection (no"
    " chunked encoding), so an aborted response cannot be told from a complete one"
    " (GET /plain/raise-mid)",
)
UWSGI_CLOSE_FRAMED = KnownBug(
    "uwsgi",
    "",
    "uWSGI limitation: streamed responses are framed by closing the connection (no chunked"
    " encoding), so an aborted response cannot be told from a complete one"
    " (GET /plain/raise-mid)",
)
WSGIREF_CHUNKED_UPLOAD = KnownBug(
    "python",
    "",
    "wsgiref limitation: chunked request bodies are not supported; the app gets an empty"
    " body (no CONTENT_LENGTH, no wsgi.input_terminated)",
)
UWSGI_CHUNKED_UPLOAD = KnownBug(
    "uwsgi",
    "",
    "uWSGI limitation (without --http-chunked-input): chunked request bodies are not"
    " supported; the app gets an empty body (no CONTENT_LENGTH, no wsgi.input_terminated)",
)
WERKZEUG_RAW_BYTES = KnownBug(
    "werkzeug",
    ">=3.0",
    "raw UTF-8 bytes in the request target are decoded as latin-1 and then UTF-8 encoded"
    " again, so PATH_INFO is double-encoded ('/caf\\xc3\\x83\\xc2\\xa9'; GET /plain/environ"
    " with the target b'/caf\\xc3\\xa9' shows it)",
)
GRANIAN_HTTP10 = KnownBug(
    "granian",
    ">=2.0",
    "SERVER_PROTOCOL is 'HTTP/1' for an HTTP/1.0 request (GET /plain/environ sent as"
    " HTTP/1.0), not a PEP 3333 value; bridgeway maps unknown values to '1.1' with a"
    " warning (A2W-SCOPE-02)",
)
GRANIAN_LATIN1_IN = KnownBug(
    "granian",
    ">=2.0",
    "a request header value that is not UTF-8 (b'caf\\xe9') reaches the environ as ''"
    " instead of latin-1 'caf\\xe9' (GET /plain/environ with 'X-Foo: caf\\xe9')",
)
GRANIAN_LATIN1_OUT = KnownBug(
    "granian",
    ">=2.0",
    "response header values are encoded as UTF-8 instead of latin-1 (PEP 3333 §Unicode"
    " Issues), so 'caf\\xc3\\xa9' goes out as b'caf\\xc3\\x83\\xc2\\xa9'",
)
CHEROOT_COOKIES = KnownBug(
    "cheroot",
    ">=10",
    "of two Cookie header lines only the last reaches HTTP_COOKIE (GET /plain/environ with"
    " 'Cookie: a=1' and 'Cookie: b=2' gives 'b=2')",
)
WSGIREF_204 = KnownBug(
    "python",
    "",
    "wsgiref's BaseHandler.finish_content() adds 'Content-Length: 0' to every empty"
    " response, 204 and 304 included (RFC 9110 §8.6; GET /plain/204)",
)
WAITRESS_204_CLOSE = KnownBug(
    "waitress",
    ">=3.0",
    "waitress closes the connection after a 204/304 that has no Content-Length (plain"
    " WSGI: GET /plain/204 answers 'Connection: close')",
)

# --- WSGI hosts (tests/live/hosts.py: Debian's packages and the mod_wsgi venv) -----------

MODWSGI_ABORT = KnownBug(
    "mod_wsgi",
    ">=6.1",
    "when the WSGI iterable raises mid-stream, mod_wsgi (daemon mode) ends the chunked"
    " response normally and keeps the connection, so a truncated body looks complete"
    " (plain WSGI reproduction: GET /plain/raise-mid ends with 0\\r\\n\\r\\n)",
)
PASSENGER_PATH_INFO = KnownBug(
    "passenger",
    ">=6.0",
    "PATH_INFO is not percent-decoded (PEP 3333 takes it from CGI, where it is decoded):"
    " GET /plain/environ/caf%C3%A9 gives PATH_INFO '/plain/environ/caf%C3%A9'",
)
PASSENGER_HTTP10 = KnownBug(
    "passenger",
    ">=6.0",
    "SERVER_PROTOCOL is 'HTTP/1.1' for an HTTP/1.0 request (GET /plain/environ sent as HTTP/1.0)",
)
PASSENGER_SERVER_PORT = KnownBug(
    "passenger",
    ">=6.0",
    "SERVER_PORT comes from the Host header, '80' when it names no port, not from the port"
    " the request came in on (GET /plain/environ with 'Host: localhost')",
)
PASSENGER_CHUNKED_UPLOAD = KnownBug(
    "passenger",
    ">=6.0",
    "a chunked request body cannot be read by the app: no CONTENT_LENGTH and no"
    " wsgi.input_terminated (POST /plain/environ with Transfer-Encoding: chunked)",
)
PASSENGER_EMPTY_LENGTH = KnownBug(
    "passenger",
    ">=6.0",
    "'Content-Length: 0' is dropped: a POST with an empty body reaches the app without"
    " CONTENT_LENGTH (POST /plain/environ)",
)
PASSENGER_CLOSE_FRAMED = KnownBug(
    "passenger",
    ">=6.0",
    "Passenger limitation: its WSGI loader answers 'Connection: close', so a streamed"
    " response (no Content-Length) is framed by closing the connection: an aborted"
    " response cannot be told from a complete one, and the connection is not kept alive"
    " (GET /plain/raise-mid)",
)
PASSENGER_100_CONTINUE = KnownBug(
    "passenger",
    ">=6.0",
    "the interim '100 Continue' lacks the empty line that ends it ('HTTP/1.1 100"
    " Continue\\r\\nHTTP/1.1 200 OK'), so a client sees a malformed response (POST"
    " /plain/environ with Expect: 100-continue)",
)
NGINX_EMPTY_HOST = KnownBug(
    "nginx",
    ">=1.22",
    "Debian's uwsgi_params sends 'uwsgi_param HTTP_HOST $host', so a request without a"
    " Host header (HTTP/1.0) reaches the app with an empty one (GET /plain/environ sent as"
    " HTTP/1.0 gives HTTP_HOST '')",
)
UWSGI_SOCKET_DUPLICATES = KnownBug(
    "uwsgi",
    ">=2.0.26",
    "behind nginx (--socket, the uwsgi protocol) a header sent twice arrives as two"
    " variables of one name and uWSGI keeps the last (GET /plain/environ with 'Accept: a/b'"
    " and 'Accept: c/d' gives HTTP_ACCEPT 'c/d')",
)
UWSGI_CLOSE_FRAMED_NGINX = KnownBug(
    "uwsgi",
    "",
    "uWSGI limitation: over the uwsgi protocol a streamed response is framed by closing"
    " the connection, so nginx cannot tell an aborted response from a complete one: it"
    " ends its chunked response normally and keeps the client's connection (GET"
    " /plain/raise-mid through nginx)",
)

# --- ASGI servers (WSGIToASGI's conformance suite) -------------------------------------

GRANIAN_EMPTY_HOST = KnownBug(
    "granian",
    ">=2.8.7",
    "granian's ASGI interface puts an empty `host` header in the scope of an HTTP/1.0"
    " request without Host (printf 'GET /x HTTP/1.0\\r\\n\\r\\n' | nc: the app sees"
    " HTTP_HOST='')",
)
DAPHNE_BUFFERS = KnownBug(
    "daphne",
    ">=4.1",
    "daphne calls the app only once the whole request body has arrived: POST with"
    " Content-Length: 2048 and send 1024 bytes, the app is not called",
)
DAPHNE_HANGS = KnownBug(
    "daphne",
    ">=4.1",
    "daphne leaves the connection open when an ASGI app raises after http.response.start"
    " (start, body more_body=True, raise): the client hangs until its own timeout instead"
    " of seeing the connection close",
)
DAPHNE_NO_BACKPRESSURE = KnownBug(
    "daphne",
    ">=4.1",
    "daphne's send() returns before the bytes are written (twisted buffers them): an ASGI"
    " app sending 1 MiB chunks in a loop to a client that stops reading queues hundreds of"
    " MiB in the server",
)
DAPHNE_NO_DATE = KnownBug(
    "daphne",
    ">=4.1",
    "daphne sends no Date header (RFC 9110 §6.6.1: an origin server with a clock MUST): any"
    " ASGI app, curl -i shows only `Server: daphne`",
)
UVICORN_HTTPTOOLS_CHUNKS_10 = KnownBug(
    "uvicorn",
    ">=0.54",
    "uvicorn's httptools protocol (also under gunicorn's uvicorn worker) answers an HTTP/1.0"
    " request with Transfer-Encoding: chunked (RFC 9112 §6.1 forbids it): any ASGI app"
    " sending more_body=True, GET / HTTP/1.0",
)
HYPERCORN_LIFESPAN_EXIT_0 = KnownBug(
    "hypercorn",
    ">=0.17",
    "hypercorn exits with code 0 when the app sends lifespan.startup.failed (the worker dies"
    " with LifespanFailureError, the master returns 0): an ASGI app that answers startup"
    " with startup.failed, `hypercorn app; echo $?`",
)

# Every bug above, for the registry's own test.
ALL: tuple[KnownBug, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, KnownBug))
