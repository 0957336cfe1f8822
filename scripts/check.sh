#!/usr/bin/env bash
# The whole check: creates .venv if needed and installs bridgeway with its dev extra (the
# test extra plus the toolchain) against the pinned versions in constraints.txt
# (BRIDGEWAY_DEPS=latest: the newest releases instead, in .venv-latest), then runs ruff
# format --check, ruff check, mypy --strict, python -m build with twine check on the
# sdist and the wheel, and the whole pytest suite (real servers included; the docs are
# built by tests/test_docs_build.py with mkdocs build --strict) on the default Python,
# and the fast lane (-m "not servers and not bench") on every other supported Python it
# can find, with the test extra only.
# Extra arguments go to the full pytest run (for example: scripts/check.sh -k environ).
# BRIDGEWAY_PYTHONS="3.11" limits the fast lanes to the Pythons listed.
#
# apt-get: the script calls `apt-get update` and `apt-get install wrk` (as root, else with
# sudo) only when wrk is missing; the end-to-end benchmark's smoke test needs it. It also
# sources scripts/hosts.sh, whose ensure_hosts calls `apt-get update` and `apt-get install`
# only when one of Apache (apache2, apache2-dev), nginx, Passenger or Debian's python3-venv
# and python3-dev is missing, then keeps the mod_wsgi venv of Debian's python3 up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
source scripts/hosts.sh
ensure_venv dev
ensure_hosts
main_venv="$VENV"
main_version="$("$main_venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk (apt-get)"
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq >/dev/null && $apt_get install -y -qq wrk >/dev/null ||
    echo "could not install wrk; tests/test_bench_smoke.py::test_e2e_bench_runs will fail" >&2
fi
echo "== ruff format --check" && "$main_venv/bin/ruff" format --check bridgeway tests bench examples scripts
echo "== ruff check" && "$main_venv/bin/ruff" check bridgeway tests bench examples scripts
echo "== mypy --strict" && "$main_venv/bin/mypy"
# The release artefacts build and their metadata renders (PyPI's own check): a few
# seconds; the build backend comes from PyPI into build's isolated environment.
echo "== python -m build, twine check"
dist="$(mktemp -d)"
if ! "$main_venv/bin/python" -m build --outdir "$dist" . >"$dist/build.log" 2>&1; then
  cat "$dist/build.log" >&2; exit 1
fi
"$main_venv/bin/python" -m twine check --strict "$dist"/*.whl "$dist"/*.tar.gz
rm -rf "$dist"
echo "== pytest, Python $main_version, the whole suite" && "$main_venv/bin/pytest" "$@"

missing=""
for version in ${BRIDGEWAY_PYTHONS:-$SUPPORTED_PYTHONS}; do
  [ "$version" = "$main_version" ] && continue
  if ! py="$(find_python "$version")"; then
    missing="$missing $version"; continue
  fi
  ensure_venv test "$main_venv-$version" "$py"
  echo "== pytest, Python $version, the fast lane (-m 'not servers and not bench')"
  "$VENV/bin/pytest" -q -m "not servers and not bench and not soak" -p no:cacheprovider
done
if [ -n "$missing" ]; then
  echo "== NOT CHECKED: no Python$missing found (PATH, pyenv, /usr/bin); the fast lane ran on the others" >&2
fi
