#!/usr/bin/env bash
# Rewrite constraints.txt with the newest releases that pyproject.toml allows, resolved
# in a scratch venv. Then run `./scripts/check.sh` (pinned, so against the new file):
# an upstream fix of a known bug shows as a strict XPASS naming the version
# (tests/support/known_bugs.py); commit constraints.txt with the bounds you narrowed.
# The modwsgi extra's mod_wsgi compiles against Apache: scripts/hosts.sh installs apache2-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
py="$(default_python)"
"$py" -m venv "$scratch/venv"
"$scratch/venv/bin/python" -m pip install -q --disable-pip-version-check -e ".[bench,dev,modwsgi]"
{
  echo "# Known-good versions for the check (scripts/check.sh), pinned; users keep pyproject's loose bounds."
  echo "# Refresh: ./scripts/refresh-constraints.sh (installs the latest releases in a scratch venv, runs nothing, rewrites this file)."
  "$scratch/venv/bin/python" -m pip freeze --exclude-editable | grep -v '^bridgeway'
} > constraints.txt
echo "constraints.txt rewritten ($(grep -c '==' constraints.txt) pins); now run ./scripts/check.sh"
