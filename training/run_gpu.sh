#!/usr/bin/env bash
# The one script sent to the GPU machine (repo root as cwd; data/ carried):
#   set -o pipefail; bash training/run_gpu.sh 2>&1 | tee $OUT/log
# Trains, side by side on one GPU (separate processes, each training its pair in lockstep on identical
# batches): photon-tiny + vanilla-tiny (shipped), the alpha sweep, and W1-unbounded / 2x2-chunk variants.
# Writes to $OUT: the shipped models' F16 safetensors (split in <16 MiB parts), meta.tar.gz
# (configs, results.json and train_log.tsv of every process).
set -uo pipefail
OUT=$(realpath -m "${OUT:-work-out/gpu}"); mkdir -p "$OUT"
W=${WORK:-/tmp/photon-run}; rm -rf "$W"; mkdir -p "$W"
BUDGET=${BUDGET:-400}
ARGS=${ARGS:-}
GROUPS_=${GROUPS_:-"main:photon-tiny,vanilla-tiny a01:a0.1-shared,a0.1-isolated a03:a0.3-shared,a0.3-isolated var:w1-unbounded,chunks-2x2"}
SAVE=${SAVE:-photon-tiny,vanilla-tiny}
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || true
python -c "import torch; print('torch', torch.__version__, torch.cuda.is_available())"
pids=()
for g in $GROUPS_; do
  name=${g%%:*}; runs=${g#*:}
  ( timeout $(( ${BUDGET%.*} + 185 )) python training/train.py --runs "$runs" --save "$SAVE" --time-budget "$BUDGET" ${STEPS:+--steps $STEPS --deadline $BUDGET} \
      --out "$W/$name" $ARGS 2>&1 | sed -u "s/^/[$name] /" ) &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
nvidia-smi --query-gpu=memory.used --format=csv 2>/dev/null || true
# ship: shipped weights split into < 16 MiB parts, everything else in one small tarball
for n in ${SAVE//,/ }; do
  f=$(ls "$W"/*/"$n".safetensors 2>/dev/null | head -1)
  [ -n "$f" ] && split -b 15M -d "$f" "$OUT/$n.safetensors.part"
done
(cd "$W" && tar czf "$OUT/meta.tar.gz" */*.json */*.tsv)
python training/summarize.py "$W"/*/results.json
ls -la "$OUT"
