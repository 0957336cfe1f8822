# Shared by scripts/check.sh, scripts/demo.sh and scripts/refresh-constraints.sh.
#
# Two dependency modes (BRIDGEWAY_DEPS):
#   pinned (default)  install with `-c constraints.txt`: the known-good versions of the
#                     servers, frameworks and tools the check was last refreshed against
#   latest            the newest releases pyproject's loose bounds allow, in a venv of its
#                     own (.venv-latest), so upstream changes are seen deliberately
# pyproject.toml keeps loose lower bounds for users; only the check is pinned.

BRIDGEWAY_DEPS="${BRIDGEWAY_DEPS:-pinned}"
SUPPORTED_PYTHONS="3.10 3.11 3.12 3.13"

# find_python X.Y: print the path of a CPython X.Y the way a user's machine offers one
# (pythonX.Y on PATH, then pyenv's versions, then /usr/bin), or nothing.
find_python() {
  local want="$1" candidate root
  local -a candidates=("python$want")
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root 2>/dev/null || true)"
    [ -n "$root" ] && candidates+=("$root"/versions/"$want".*/bin/python"$want")
  fi
  candidates+=("/usr/bin/python$want" "/usr/local/bin/python$want")
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys; sys.exit(f'{sys.version_info[0]}.{sys.version_info[1]}' != '$want')" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

# default_python: $PYTHON, else the first python3 on PATH that is >= 3.10.
default_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return 0; fi
  for candidate in python3 python3.13 python3.12 python3.11 python3.10 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "bridgeway needs Python 3.10 or newer on PATH" >&2
  return 2
}

# ensure_venv EXTRA [VENV] [PYTHON]: create VENV (default .venv, or .venv-latest in the
# latest mode) with PYTHON if it is missing, and install bridgeway[EXTRA] (editable).
ensure_venv() {
  local extra="$1" venv="${2:-}" py="${3:-}"
  if [ -z "$venv" ]; then
    if [ "$BRIDGEWAY_DEPS" = latest ]; then venv=.venv-latest; else venv=.venv; fi
  fi
  [ -n "$py" ] || py="$(default_python)"
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv with $("$py" --version)"
    "$py" -m venv "$venv"
  fi
  case "$BRIDGEWAY_DEPS" in
    pinned)
      echo "== installing bridgeway[$extra] into $venv (pinned: constraints.txt)"
      "$venv/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[$extra]" ;;
    latest)
      echo "== installing bridgeway[$extra] into $venv (latest releases)"
      "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade \
        --upgrade-strategy eager -e ".[$extra]" ;;
    *) echo "BRIDGEWAY_DEPS must be 'pinned' or 'latest', not '$BRIDGEWAY_DEPS'" >&2; exit 2 ;;
  esac
  case "$extra" in test | dev | bench) ensure_gunicorn_eventlet "$venv" ;; esac
  VENV="$venv"
}

# gunicorn 26 dropped the eventlet worker (constraints.txt pins a newer gunicorn): the
# eventlet live test (tests/servers/test_live_a2w_greenlet.py) runs the last release that has it,
# installed apart into VENV/gunicorn-eventlet and put first on that server's PYTHONPATH.
GUNICORN_EVENTLET_PIN="gunicorn==25.3.0"

ensure_gunicorn_eventlet() {
  local target="$1/gunicorn-eventlet"
  if [ "$(cat "$target/.pin" 2>/dev/null)" != "$GUNICORN_EVENTLET_PIN" ]; then
    echo "== installing $GUNICORN_EVENTLET_PIN into $target (the eventlet worker)"
    rm -rf "$target"
    "$1/bin/python" -m pip install -q --disable-pip-version-check --no-deps --target "$target" \
      "$GUNICORN_EVENTLET_PIN"
    echo "$GUNICORN_EVENTLET_PIN" > "$target/.pin"
  fi
}
