#!/usr/bin/env bash
# One bounded GPU sitting of the default model v4 (configs/udair/default-v4-gpu.yaml), meant for
# a lent device machine, run from the repository root. From this machine, with the `device` tool:
#
#   run(command="bash scripts/gpu_sitting.sh 7", carry=["data/photos1024-v4"], timeout_s=600)
#
# (build the corpus here first: aioir data photos data/photos1024-v4 --list photos-v4
# --max-side 1024). MINUTES (default 7) bounds the training; then the run exports its best
# checkpoint and evaluates it on the corpus test split. It starts from the GPU run's committed
# last.ckpt when there is one (exact resume), else from the CPU run's committed weights.
# What comes back under $OUT (at most 8 files): last.ckpt, the export (model.safetensors,
# config.json, bank.safetensors), metrics.csv, eval.json and the log. Afterwards, here:
#   cp $FILES/last.ckpt checkpoints/default-v4-gpu/ ; copy the export where it is adopted;
#   git add -f checkpoints/default-v4-gpu/last.ckpt; record the sitting in docs/history.md.
# A dry run on a CPU (checks the script, not the GPU):
#   PYTHON=.venv/bin/python DEVICE=cpu OUT=/tmp/sit bash scripts/gpu_sitting.sh 1 \
#     trainer.accelerator=cpu trainer.max_steps=2 data.num_workers=0 data.samples_per_task=1
set -euo pipefail
MINUTES="${1:-7}"
shift || true
EXTRA=("$@")   # more KEY=VALUE overrides for aioir train
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-runs/gpu-sitting-out}"
PY="${PYTHON:-python3}"
RUN=runs/default-v4-gpu
CORPUS=data/photos1024-v4
mkdir -p "$OUT" "$RUN/checkpoints"
exec > >(tee "$OUT/sitting.log") 2>&1

[ -d "$CORPUS" ] || { echo "gpu_sitting: $CORPUS missing: carry it (see the header)"; exit 2; }
# the image's python holds torch, lightning, safetensors…; install aioir itself for its entry points
[ -n "${SKIP_INSTALL:-}" ] || "$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

resume=()
overrides=(data.root="$CORPUS" trainer.max_time="00:00:$(printf %02d "$MINUTES"):00")
if [ -f checkpoints/default-v4-gpu/last.ckpt ]; then
  cp checkpoints/default-v4-gpu/last.ckpt "$RUN/checkpoints/last.ckpt"
  resume=(--resume auto)
elif [ -f checkpoints/default-v4-cpu/model.safetensors ]; then
  overrides+=(model.checkpoint=checkpoints/default-v4-cpu)
fi
"$PY" -m aioir train --config configs/udair/default-v4-gpu.yaml --output "$RUN" "${resume[@]}" \
  --set "${overrides[@]}" "${EXTRA[@]}"

cp "$RUN/checkpoints/last.ckpt" "$OUT/"
cp "$RUN"/export/model.safetensors "$RUN"/export/config.json "$RUN"/export/bank.safetensors "$OUT/"
cp "$(ls -d "$RUN"/logs/version_* | sort -V | tail -1)/metrics.csv" "$OUT/"
"$PY" -m aioir evaluate --model "$RUN/export" --benchmark "synthetic:$CORPUS" --crop 256 \
  --json "$OUT/eval.json" --device "$DEVICE"
