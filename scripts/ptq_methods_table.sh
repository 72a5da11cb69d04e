#!/usr/bin/env bash
# ΔL of RTN, HQQ, GPTQ and AWQ per model × format × Qb on held-out Persuasion (bundled split
# eval_austen), calibration on the bundled calib split. Writes CSV to stdout.
# Usage: scripts/ptq_methods_table.sh MODEL_DIR... (QS=path/to/quantscape, WINDOWS=64)
set -euo pipefail
QS=${QS:-target/debug/quantscape}
WINDOWS=${WINDOWS:-64}
FORMATS=${FORMATS:-"int4_asym int3_asym mxfp4 mxint4"}
BLOCKS=${BLOCKS:-"32 128 channel"}
METHODS=${METHODS:-"rtn hqq gptq awq"}
echo "model,format,block,method,bits_per_weight,nll_base,delta_nll,ci_lo,ci_hi,kl_mean,top1"
for model in "$@"; do
  for f in $FORMATS; do
    for b in $BLOCKS; do
      for m in $METHODS; do
        "$QS" eval --model "$model" --data eval_austen --windows "$WINDOWS" --format "$f" \
          --block "$b" --method "$m" --json --quiet |
          python3 -c 'import json,sys; v=json.load(sys.stdin); r=v["report"]; print(",".join(map(str,[sys.argv[1],sys.argv[2],sys.argv[3],sys.argv[4],round(v["bits_per_weight"],4),round(r["nll_base"],5),round(r["delta_nll"],5),round(r["delta_nll_ci95"]["lo"],5),round(r["delta_nll_ci95"]["hi"],5),round(r["kl_mean"],5),round(r["top1_agreement"],4)])))' \
          "$(basename "$model")" "$f" "$b" "$m"
      done
    done
  done
done
