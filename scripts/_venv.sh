# Shared by scripts/check.sh and scripts/demo.sh: create .venv with a Python >= 3.10
# and install bridgeway (editable) with the given extra.
ensure_venv() {
  local extra="$1" py="${PYTHON:-}"
  if [ -z "$py" ]; then
    for candidate in python3 python3.13 python3.12 python3.11 python3.10 python; do
      if command -v "$candidate" >/dev/null 2>&1 &&
         "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        py="$candidate"; break
      fi
    done
  fi
  [ -n "$py" ] || { echo "bridgeway needs Python 3.10 or newer on PATH" >&2; exit 2; }
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $("$py" --version)"
    "$py" -m venv .venv
  fi
  echo "== installing bridgeway[$extra] into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extra]"
}
