# The WSGI hosts the tests serve through (Apache mod_wsgi, Phusion Passenger, nginx in
# front of uWSGI): sourced by scripts/check.sh, or run on its own (bash scripts/hosts.sh).
#
# apt-get: ensure_hosts calls `apt-get update` and `apt-get install` (as root, else with
# sudo) only when one of HOST_PACKAGES is missing (checked with dpkg -s), so a rerun does
# not touch apt. While it installs, a policy-rc.d keeps apt from starting Apache and
# nginx as system services (both would take port 80; the tests start their own on
# loopback ports and stop them).
#
# mod_wsgi: Apache, started as root, runs the app as www-data, which cannot read a Python
# under /root (pyenv's). So the daemon runs a venv made from Debian's python3
# ($BRIDGEWAY_MODWSGI_VENV, default /opt/bridgeway-hosts/modwsgi-venv) holding pyproject's
# `modwsgi` extra (mod_wsgi built against that Python: --no-cache-dir, since a cached
# wheel may link another Python's libpython); bridgeway itself and the tested code come
# from the repository (tests/live/hosts.py passes --python-path).

HOST_PACKAGES="apache2 apache2-dev nginx passenger python3-venv python3-dev"
MODWSGI_VENV="${BRIDGEWAY_MODWSGI_VENV:-/opt/bridgeway-hosts/modwsgi-venv}"

# as_root CMD...: run CMD as root (directly when we are root, else with sudo).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_hosts() {
  local missing="" pkg reqs policy=/usr/sbin/policy-rc.d own_policy=""
  for pkg in $HOST_PACKAGES; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
  done
  if [ -n "$missing" ]; then
    echo "== installing$missing (apt-get)"
    if [ ! -e "$policy" ]; then
      as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
      own_policy=1
    fi
    # shellcheck disable=SC2086
    as_root apt-get update -qq >/dev/null &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null ||
      echo "could not install$missing; the mod_wsgi, Passenger and nginx tests will fail" >&2
    if [ -n "$own_policy" ]; then as_root rm -f "$policy"; fi
  fi
  if [ ! -x "$MODWSGI_VENV/bin/python" ]; then
    echo "== creating $MODWSGI_VENV with Debian's $(/usr/bin/python3 --version)"
    as_root mkdir -p "$(dirname "$MODWSGI_VENV")"
    as_root /usr/bin/python3 -m venv "$MODWSGI_VENV"
  fi
  reqs="$(/usr/bin/python3 -c 'import tomllib; print(" ".join(
    tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["modwsgi"]))')"
  echo "== installing bridgeway's modwsgi extra into $MODWSGI_VENV (pinned: constraints.txt)"
  # shellcheck disable=SC2086
  as_root "$MODWSGI_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --no-cache-dir -c constraints.txt $reqs
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  ensure_hosts
fi
