#!/usr/bin/env bash
# Set up the virtual environment (Python >= 3.12) and front-end packages.
# Usage: scripts/setup.sh app|dev|bench   (dev adds test and lint tools; bench adds the
# SCIM server benchmark's peer packages on top of dev)
# Re-running is cheap: installs happen only when a lock file changed.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-app}"

find_python() {
  local candidate
  # 3.12 first: the lock files are resolved for it.
  for candidate in "${CONSOLE_PYTHON:-}" python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12 \
      /usr/local/bin/python3.12 /usr/bin/python3.12 python3.13 "$HOME"/.pyenv/versions/3.13*/bin/python3.13 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
      command -v "$candidate" 2>/dev/null || echo "$candidate"
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
  python="$(find_python)" || { echo "setup: Python 3.12 or newer is needed; set CONSOLE_PYTHON to its path." >&2; exit 1; }
  echo "setup: creating .venv with $python ($("$python" --version))"
  rm -rf .venv
  "$python" -m venv .venv
fi

install_lock() {  # install_lock NAME [pip options]: install requirements/NAME.txt when it changed
  local name="$1" lock stamp want
  shift
  lock="requirements/$name.txt"
  stamp=".venv/.installed-$name"
  want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing $lock"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" -r "$lock"
    echo "$want" > "$stamp"
  fi
}

if [ "$profile" = bench ]; then
  install_lock dev
  install_lock bench --no-deps
else
  install_lock "$profile"
fi

# Front-end assets come from the npm registry, pinned by package-lock.json.
assets_stamp="node_modules/.installed"
want_assets="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$assets_stamp" ] || [ "$(cat "$assets_stamp")" != "$want_assets" ]; then
  command -v npm >/dev/null 2>&1 || { echo "setup: npm (Node.js) is needed for the front-end assets." >&2; exit 1; }
  echo "setup: installing front-end assets"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want_assets" > "$assets_stamp"
fi
