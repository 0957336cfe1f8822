#!/usr/bin/env python3
"""Run Flask's, Werkzeug's, Starlette's and FastAPI's own test suites natively and
through a bridgeway double bridge, and compare them test by test (issue 13).

    python3 scripts/framework_suites/run.py                 # all four suites
    python3 scripts/framework_suites/run.py flask werkzeug  # some of them
    python3 scripts/framework_suites/run.py --setup-only    # download and install only
    python3 scripts/framework_suites/run.py starlette --hook transport \
        --a2w-opts '{"wait_background": true}' --tag wait-background

The work folder (``--dir``, default ``$BRIDGE_SUITES_DIR`` or ``/tmp/bridgeway-suites``)
gets the sdists (their tests), two venvs (``venv-wsgi``: Flask and Werkzeug;
``venv-asgi``: Starlette and FastAPI) with this checkout installed editable and the
frameworks at the versions of ``constraints.txt``, and ``results/`` with one JSON of
outcomes per run. Native outcomes are reused when present (``--rerun-native`` to redo).
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PLUGIN = "bridge_plugin"

# name -> (distribution, venv, BRIDGE_KIND, extra pytest arguments)
SUITES: dict[str, tuple[str, str, str, list[str]]] = {
    "flask": ("flask", "wsgi", "wsgi", []),
    # dev_server tests start a werkzeug server in a subprocess: the plugin cannot reach
    # their apps, and the watchdog reloader test hangs in some sandboxes natively.
    "werkzeug": ("werkzeug", "wsgi", "wsgi", ["-m", "not dev_server"]),
    "starlette": ("starlette", "asgi", "asgi", []),
    "fastapi": ("fastapi", "asgi", "asgi", []),
}

# What each suite's own test dependency group needs (pyproject [dependency-groups]),
# minus linters, coverage and benchmarks. pytest: Flask 3.1.3's tests import
# _pytest.monkeypatch.notset (gone in 9.1); FastAPI asks for pytest < 9.2.
VENV_PACKAGES = {
    "wsgi": [
        "pytest==9.0.2",
        "pytest-timeout",
        "asgiref",
        "greenlet",
        "python-dotenv",
        "cffi",
        "cryptography",
        "ephemeral-port-reserve",
        "watchdog",
    ],
    "asgi": [
        "pytest==9.1.1",
        "pytest-timeout",
        "pytest-xdist",  # registers FastAPI's xdist_group marker (run with one process)
        "fastapi[all]",
        "itsdangerous",
        "jinja2",
        "opentelemetry-api",
        "opentelemetry-sdk",
        "opentelemetry-exporter-otlp-proto-http",
        "opentelemetry-instrumentation-fastapi",
        "python-multipart",
        "pyyaml",
        "httpx",
        "httpx2",
        "blockbuster",
        "anyio[trio]",
        "dirty-equals",
        "inline-snapshot",
        "pwdlib[argon2]",
        "pyjwt",
        "sqlmodel",
        "strawberry-graphql",
        "typer",
        "a2wsgi",
        "flask",
        "logfire",
        "sentry-sdk",
        "python-slugify",
    ],
}
FRAMEWORKS = {"wsgi": ["flask", "werkzeug"], "asgi": ["starlette", "fastapi"]}


def pinned(name: str) -> str:
    """``name==version`` from constraints.txt (the line that applies to this Python)."""
    for line in (REPO / "constraints.txt").read_text().splitlines():
        spec, _, marker = line.partition(";")
        if spec.split("==")[0].strip().lower() != name.lower():
            continue
        marker = marker.strip()
        if marker:
            op, _, version = marker.replace("python_version", "").strip().partition(" ")
            here = tuple(sys.version_info[:2])
            want = tuple(int(x) for x in version.strip('"').split("."))
            if not {">=": here >= want, "<": here < want}[op]:
                continue
        return spec.strip()
    raise SystemExit(f"{name} is not pinned in constraints.txt")


def run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def constraints_without_pytest(work: Path) -> Path:
    path = work / "constraints.txt"
    lines = (REPO / "constraints.txt").read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("pytest==")) + "\n")
    return path


def setup(work: Path, names: list[str]) -> None:
    sdists = work / "sdists"
    sdists.mkdir(parents=True, exist_ok=True)
    constraints = constraints_without_pytest(work)
    for name in names:
        spec = pinned(SUITES[name][0])
        version = spec.split("==")[1]
        if not (work / f"{name}-{version}").is_dir():
            run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                 "--no-deps", "-d", str(sdists), spec]
            )  # fmt: skip
            archive = next(sdists.glob(f"{name}-{version}.tar.gz"))
            with tarfile.open(archive) as tar:
                tar.extractall(work, filter="data")
    for kind in sorted({SUITES[n][1] for n in names}):
        venv = work / f"venv-{kind}"
        if not (venv / "bin" / "python").exists():
            run([sys.executable, "-m", "venv", str(venv)])
        frameworks = [pinned(f) for f in FRAMEWORKS[kind]]
        run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
             "--disable-pip-version-check", "-c", str(constraints), "-e", str(REPO),
             *frameworks, *VENV_PACKAGES[kind]]
        )  # fmt: skip


def suite_dir(work: Path, name: str) -> Path:
    version = pinned(SUITES[name][0]).split("==")[1]
    return work / f"{name}-{version}"


def run_suite(work: Path, name: str, mode: str, args: argparse.Namespace, tag: str) -> Path:
    _, kind, bridge_kind, extra = SUITES[name]
    results = work / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{name}-{tag}.json"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(HERE),
        BRIDGE_MODE=mode,
        BRIDGE_KIND=bridge_kind,
        BRIDGE_CACHE=args.cache,
        BRIDGE_RESULTS=str(out),
        BRIDGE_W2A_OPTS=args.w2a_opts,
        BRIDGE_A2W_OPTS=args.a2w_opts,
    )
    if args.hook:
        env["BRIDGE_HOOK"] = args.hook
    cmd = [
        str(work / f"venv-{kind}" / "bin" / "python"), "-m", "pytest", "tests",
        "-p", PLUGIN, "-p", "no:cacheprovider",
        # logfire's pytest plugin (installed for FastAPI's tests) is not part of any
        # suite; --tb=native: CPython 3.11.7's ast.parse can fail with "AST constructor
        # recursion depth mismatch" while pytest formats a long traceback.
        "-p", "no:pytest_logfire", "-p", "no:logfire", "--tb=native",
        "-q", "-rfE", "--timeout", "120", *extra, *args.pytest_args,
    ]  # fmt: skip
    log = results / f"{name}-{tag}.log"
    started = time.monotonic()
    print(f"== {name} {mode} ({tag}) -> {log}", flush=True)
    with log.open("w") as f:
        subprocess.run(cmd, cwd=suite_dir(work, name), env=env, stdout=f, stderr=subprocess.STDOUT)
    lines = log.read_text().splitlines()
    tally = re.compile(r"\b\d+ (passed|failed)\b")
    summary = next((x for x in reversed(lines) if tally.search(x)), "?")
    print(f"   {time.monotonic() - started:.0f} s; {summary}")
    return out


# A parametrised test id can hold an absolute path under the suite's folder (Werkzeug's
# test_send_file); the native results may come from a run in another --dir.
_SUITE_PATH = re.compile(r"/[^\[\]]*/(?:flask|werkzeug|starlette|fastapi)-[0-9][^/]*/")


def _ids(results: Path) -> dict[str, str]:
    return {_SUITE_PATH.sub("<suite>/", k): v for k, v in json.loads(results.read_text()).items()}


def compare(name: str, native: Path, bridged: Path) -> dict[str, object]:
    n = _ids(native)
    b = _ids(bridged)
    passes = sorted(k for k, v in n.items() if v == "passed")
    lost = [k for k in passes if b.get(k) != "passed"]
    gained = sorted(k for k, v in b.items() if v == "passed" and n.get(k) != "passed")
    kept = len(passes) - len(lost)
    ratio = kept / len(passes) if passes else 1.0
    print(f"{name}: native passes {len(passes)}, also passing bridged {kept}, ratio {ratio:.2%}")
    for k in lost:
        print(f"   bridged-only failure: {k} ({b.get(k, 'not run')})")
    for k in gained:
        print(f"   passes bridged only: {k}")
    return {"native": len(passes), "bridged": kept, "ratio": ratio, "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=", ".join(SUITES))
    parser.add_argument(
        "--dir", default=os.environ.get("BRIDGE_SUITES_DIR", "/tmp/bridgeway-suites")
    )
    parser.add_argument("--setup-only", action="store_true")
    parser.add_argument("--no-setup", action="store_true")
    parser.add_argument("--rerun-native", action="store_true")
    parser.add_argument("--hook", default="", help="BRIDGE_HOOK (see bridge_plugin.py)")
    parser.add_argument("--cache", default="per_app", choices=["per_app", "per_call"])
    parser.add_argument("--w2a-opts", default="{}", help="JSON kwargs for WSGIToASGI")
    parser.add_argument("--a2w-opts", default="{}", help="JSON kwargs for ASGIToWSGI")
    parser.add_argument("--tag", default="bridged", help="name of the bridged results")
    argv = sys.argv[1:]
    pytest_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.pytest_args = pytest_args  # everything after "--" goes to pytest
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suites: {sorted(unknown)}; choose from {list(SUITES)}")
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    if not args.no_setup:
        setup(work, args.suites)
    if args.setup_only:
        return
    summary = {}
    for name in args.suites:
        native = work / "results" / f"{name}-native.json"
        if args.rerun_native or not native.exists():
            native = run_suite(work, name, "native", args, "native")
        bridged = run_suite(work, name, "bridged", args, args.tag)
        summary[name] = compare(name, native, bridged)
    print()
    for name, s in summary.items():
        print(f"{name:10} native {s['native']:5}  bridged {s['bridged']:5}  ratio {s['ratio']:.2%}")
    (work / "results" / f"summary-{args.tag}.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
