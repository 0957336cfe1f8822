#!/usr/bin/env bash
# The whole check: creates .venv if needed, installs bridgeway with its test extras,
# then runs ruff format --check, ruff check, mypy --strict and pytest.
# Extra arguments go to pytest (for example: scripts/check.sh -k environ).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv test
echo "== ruff format --check" && .venv/bin/ruff format --check bridgeway tests bench examples scripts
echo "== ruff check" && .venv/bin/ruff check bridgeway tests bench examples scripts
echo "== mypy --strict" && .venv/bin/mypy
echo "== pytest" && .venv/bin/pytest "$@"
