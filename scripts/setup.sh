#!/usr/bin/env bash
# Sets up everything policy-watcher needs on a Debian machine with Python >= 3.11:
# Debian's Chromium for the browser fetcher (when its packages are missing), uv, and the
# locked Python dependencies in .venv. Shared by the README's quick start, .ci/run and the
# Dockerfile, so all three install the same way. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's headless build (what Playwright itself uses headless: faster to launch, half the
# memory) and the full chromium; WATCHER_BROWSER_PACKAGES narrows the list (the image takes
# the headless one only), WATCHER_BROWSER=/path/to/chrome or WATCHER_SKIP_BROWSER=1 skip it.
BROWSER_PACKAGES="${WATCHER_BROWSER_PACKAGES:-chromium-headless-shell chromium}"

missing_browser_packages() {
  for package in $BROWSER_PACKAGES; do
    dpkg -s "$package" >/dev/null 2>&1 || echo "$package"
  done
}

# apt_install WHY PACKAGE...: installs those of the packages apt knows (as root or via sudo).
apt_install() {
  local why="$1" sudo="" wanted=() package
  shift
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  for package in "$@"; do
    if apt-cache show "$package" >/dev/null 2>&1; then wanted+=("$package"); fi
  done
  [ "${#wanted[@]}" -gt 0 ] || { echo "setup: apt has none of: $*" >&2; return 0; }
  echo "setup: installing ${wanted[*]} $why" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${wanted[@]}" >/dev/null
}

if [ "${WATCHER_SKIP_BROWSER:-0}" != 1 ] && [ ! -x "${WATCHER_BROWSER:-/nonexistent}" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    read -r -a missing <<< "$(missing_browser_packages | tr '\n' ' ')"
    if [ "${#missing[@]}" -gt 0 ]; then
      apt_install "for the browser fetcher" "${missing[@]}" fonts-liberation
    fi
  fi
  if ! ls /usr/lib/chromium/chromium* >/dev/null 2>&1 && ! command -v chromium \
       >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
       && ! command -v google-chrome >/dev/null 2>&1; then
    echo "setup: no Chromium for the browser fetcher; install one or set WATCHER_BROWSER" >&2
    exit 1
  fi
fi

export UV_PYTHON_DOWNLOADS=never
UV=uv
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x .tools/bin/uv ]; then
    echo "setup: installing uv into .tools/" >&2
    if ! python3 -c "import ensurepip" 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
      apt_install "to create a virtual environment" python3-venv
    fi
    python3 -m venv .tools
    .tools/bin/pip install -q "uv>=0.5"
  fi
  UV=.tools/bin/uv
fi
"$UV" sync --locked --quiet "$@"
