#!/usr/bin/env bash
# The browser tests, end to end: a fresh example mesh, built; canopy serve on a free
# loopback port; tokens for zoe, alice, dana and bob; the UI driven in Debian's Chromium by
# playwright-core (ui.test.mjs, builder.test.mjs, upload.test.mjs, then dashboard.test.mjs).
# Screenshots land in SCREENSHOT_DIR.
# With CANOPY_WEB_DIR=web/dist exported, the server serves the UI from that folder (a fresh
# `npm run build` in web/) instead of the copy compiled into the binary.
#
#   tests/browser/run.sh CANOPY_BINARY SCREENSHOT_DIR
set -euo pipefail
canopy=$(realpath "$1")
shots=$2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$shots"
shots=$(realpath "$shots")

if [[ ! -x /usr/bin/chromium ]]; then
  echo "error: /usr/bin/chromium is missing; scripts/setup --test installs it" >&2
  exit 1
fi
if [[ ! -d $here/node_modules/playwright-core ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

work=$(mktemp -d)
server=""
cleanup() {
  if [[ -n $server ]]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$canopy" example "$work/mesh" --scale 0.01 >/dev/null
cd "$work/mesh"
"$canopy" build >/dev/null 2>&1
TOKEN_ZOE=$("$canopy" token create zoe 2>/dev/null)
TOKEN_ALICE=$("$canopy" token create alice 2>/dev/null)
TOKEN_DANA=$("$canopy" token create dana 2>/dev/null)
TOKEN_BOB=$("$canopy" token create bob 2>/dev/null)
export TOKEN_ZOE TOKEN_ALICE TOKEN_DANA TOKEN_BOB

# A free port: let the kernel pick, then use it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
"$canopy" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
server=$!
for _ in $(seq 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/api/v1/health', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.1
done

# CANOPY_MESH_DIR: upload.test.mjs reads the product YAML it saved from there.
export CANOPY_URL="http://127.0.0.1:$port" SCREENSHOT_DIR="$shots" CANOPY_MESH_DIR="$work/mesh"
cd "$here"
# BROWSER_TESTS: the files to run (default: all four, in this order).
if ! node --test --test-reporter=spec --test-concurrency=1 ${BROWSER_TESTS:-ui.test.mjs builder.test.mjs upload.test.mjs dashboard.test.mjs}; then
  echo "--- server log (last 40 lines)" >&2
  tail -n 40 "$work/serve.log" >&2
  exit 1
fi
