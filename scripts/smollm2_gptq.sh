#!/bin/bash
# The GPTQ cells of the SmolLM2-135M table (README, "What the data shows"), each beside RTN on
# the same 33 windows × 512 tokens (the table's windows: `eval` picks them identically).
# Usage: scripts/smollm2_gptq.sh SMOLLM2_FOLDER OUT_DIR   (resumable: finished cells are kept)
# SMOLLM2_FOLDER: `quantscape convert` of the bundled GGUF (see the README).
set -euo pipefail
model=${1:?SmolLM2 folder}
out=${2:?output folder}
qs=${QS:-target/release/quantscape}
mkdir -p "$out"
for cell in "mxfp4 32" "nvfp4 16" "mxint4 32" "int4_asym 128"; do
  set -- $cell
  for method in rtn gptq; do
    f="$out/$1-$2-$method.json"
    [ -s "$f" ] && continue
    "$qs" eval --model "$model" --format "$1" --block "$2" --method "$method" \
      --windows 33 --ctx 512 --top-k 32 --json --quiet > "$f.tmp"
    mv "$f.tmp" "$f"
  done
done
