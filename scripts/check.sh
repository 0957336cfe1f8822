#!/usr/bin/env bash
# The whole check: creates .venv if needed, installs bridgeway with its test extras,
# then runs ruff format --check, ruff check, mypy --strict and pytest.
# Extra arguments go to pytest (for example: scripts/check.sh -k environ).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
# The end-to-end benchmark's smoke test drives real servers with wrk (Debian's package).
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk (apt-get)"
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq >/dev/null && $apt_get install -y -qq wrk >/dev/null ||
    echo "could not install wrk; tests/test_bench_smoke.py::test_e2e_bench_runs will fail" >&2
fi
echo "== ruff format --check" && .venv/bin/ruff format --check bridgeway tests bench examples scripts
echo "== ruff check" && .venv/bin/ruff check bridgeway tests bench examples scripts
echo "== mypy --strict" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest "$@"
