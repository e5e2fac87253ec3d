#!/usr/bin/env bash
# Sets up everything policy-watcher needs on a Debian/Ubuntu machine with Python >= 3.11:
# a Chromium for the browser fetcher (Debian's package when none is present), uv, and the
# locked Python dependencies in .venv. Shared by the README's quick start, .ci/run and the
# Dockerfile, so all three install the same way. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

find_browser() {
  for candidate in "${WATCHER_BROWSER:-}" /usr/lib/chromium/chromium /usr/bin/chromium \
                   /usr/bin/chromium-browser /usr/bin/google-chrome; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return 0; fi
  done
  return 1
}

if [ "${WATCHER_SKIP_BROWSER:-0}" != 1 ] && ! find_browser >/dev/null; then
  echo "setup: installing Debian's chromium (no browser found)" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium fonts-liberation >/dev/null
fi

export UV_PYTHON_DOWNLOADS=never
UV=uv
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x .tools/bin/uv ]; then
    echo "setup: installing uv into .tools/" >&2
    python3 -m venv .tools
    .tools/bin/pip install -q "uv>=0.5"
  fi
  UV=.tools/bin/uv
fi
"$UV" sync --locked --quiet "$@"
