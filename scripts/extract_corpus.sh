#!/usr/bin/env bash
# Rebuilds assets/corpus/ from its Debian sources (run once by a maintainer; a fresh clone needs
# none of this: the extracted, normalised, compressed texts are committed with their SHA-256).
#
#   bash scripts/extract_corpus.sh [OUT_DIR]     # default OUT_DIR: assets/corpus
#
# Sources (both texts public domain):
#  - Debian r-cran-janeaustenr: the six novels as R character vectors in data/Rdata.rdb. The
#    package depends on R, so it is only downloaded and unpacked (apt-get download + dpkg-deb -x),
#    never installed; quantscape's own RDB reader (src/eval/rdata.rs) decodes it.
#  - Debian bible-kjv (+ bible-kjv-text): `bible -f gen1:1-rev22:21` prints one verse per line
#    with a reference prefix, which quantscape strips (src/eval/corpus.rs).
# Needs apt-get (root or sudo for installing bible-kjv) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-assets/corpus}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

if ! command -v bible >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends bible-kjv bible-kjv-text
fi
(cd "$work" && apt-get download r-cran-janeaustenr >/dev/null)
dpkg-deb -x "$work"/r-cran-janeaustenr_*.deb "$work/x"
rdb="$(find "$work/x" -path '*janeaustenr/data/Rdata.rdb' | head -n1)"
# The last verse reference; `bible` pages nothing when stdout is not a terminal.
bible -f gen1:1-rev22:21 > "$work/kjv.txt"
echo "KJV verses: $(wc -l < "$work/kjv.txt") (expected 31102)"
cargo run --quiet --no-default-features -- corpus build \
  --austen-rdb "$rdb" --kjv-dump "$work/kjv.txt" --out "$out"
