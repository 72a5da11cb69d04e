#!/usr/bin/env bash
# Starts the real explorer under Xvfb, waits for its first drawn frame, saves a screenshot and
# fails if it is blank. Used by .ci/run; handy locally too.
#   scripts/screenshot.sh [BINARY] [OUT.png]
# Needs: Xvfb, ImageMagick (import, identify). Each run uses a fresh HOME so no saved session
# from an earlier run changes what opens.
set -euo pipefail
bin="${1:-target/debug/quantscape}"
out="${2:-target/screenshot.png}"
display=":$((90 + RANDOM % 9))"
tmp="$(mktemp -d)"
mkdir -p "$(dirname "$out")"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp >"$tmp/xvfb.log" 2>&1 &
xvfb=$!
app=""
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  kill "$xvfb" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
sleep 2
DISPLAY="$display" HOME="$tmp" XDG_RUNTIME_DIR="$tmp" "$bin" >"$tmp/app.log" 2>&1 &
app=$!
colours=0
for _ in $(seq 1 90); do
  sleep 2
  if ! kill -0 "$app" 2>/dev/null; then
    echo "error: the explorer exited before drawing:"; cat "$tmp/app.log"; exit 1
  fi
  DISPLAY="$display" import -window root "$out" 2>/dev/null || continue
  colours="$(identify -format %k "$out" 2>/dev/null || echo 0)"
  # Text alone gives a few hundred colours (antialiasing); the fitted map brings thousands.
  if [ "$colours" -gt 2000 ]; then
    echo "screenshot: $out ($colours colours)"
    exit 0
  fi
done
echo "error: no drawn frame within 180 s (last screenshot has $colours colours):"
cat "$tmp/app.log"
exit 1
