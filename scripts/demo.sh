#!/usr/bin/env bash
# The demo: creates .venv if needed, installs the example dependencies, serves the
# examples on real servers, makes a few requests of its own, then serves until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv examples
exec .venv/bin/python -m examples.demo "$@"
