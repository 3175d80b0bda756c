#!/usr/bin/env bash
# One bounded GPU sitting of a training run, meant for a lent device machine, run from the
# repository root. From this machine, with the `device` tool:
#
#   run(command="bash scripts/gpu_sitting.sh 7", carry=["data/photos1024-v4"], timeout_s=600)
#   run(command="bash scripts/gpu_sitting.sh --config configs/udair/blur-expert-gpu.yaml
#       --init checkpoints/blur-expert-small-v2/model.safetensors 7",
#       carry=["data/photos1024-v4"], timeout_s=600)
#
# (build the corpus here first: aioir data photos data/photos1024-v4 --list photos-v4
# --max-side 1024). Options:
#   --config C      the run's config (default configs/udair/default-v4-gpu.yaml, the all-in-one
#                   network; configs/udair/blur-expert-gpu.yaml is the camera-shake expert's)
#   --name N        the run's name (default: the config's file name): it trains in runs/N and
#                   resumes exactly from checkpoints/N/last.ckpt when that is committed
#   --init W        weights of a first sitting when checkpoints/N/last.ckpt is absent
#                   (model.checkpoint; default: the config's own, none for a fresh start)
#   --benchmark B   what the export is evaluated on (default photo-tasks:data/photos1024-v4)
#   MINUTES         bounds the training (default 7); KEY=VALUE after it: more `aioir train --set`
# Then the run exports its best checkpoint and evaluates it. What comes back under $OUT (at
# most 8 files): last.ckpt, the export (model.safetensors, config.json, bank.safetensors when
# the model has one), metrics.csv, eval.json and the log. Afterwards, here:
#   mkdir -p checkpoints/N; cp $FILES/last.ckpt checkpoints/N/; git add -f checkpoints/N/last.ckpt;
#   copy the export where it is adopted; record the sitting in docs/history.md.
# A dry run on a CPU (checks the script, not the GPU):
#   PYTHON=.venv/bin/python DEVICE=cpu OUT=/tmp/sit bash scripts/gpu_sitting.sh \
#     --config configs/udair/blur-expert-gpu.yaml --benchmark photo-tasks:data/photos1024-v4:motion-blur 1 \
#     trainer.accelerator=cpu trainer.max_steps=2 data.num_workers=0 data.samples_per_task=1
set -euo pipefail
CONFIG=configs/udair/default-v4-gpu.yaml
NAME=""
INIT=""
CORPUS=data/photos1024-v4
BENCHMARK="photo-tasks:$CORPUS"
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG="$2"; shift 2 ;;
    --name) NAME="$2"; shift 2 ;;
    --init) INIT="$2"; shift 2 ;;
    --benchmark) BENCHMARK="$2"; shift 2 ;;
    -*) echo "gpu_sitting: unknown option $1 (see the header)"; exit 2 ;;
    *) break ;;
  esac
done
MINUTES="${1:-7}"
shift || true
EXTRA=("$@")   # more KEY=VALUE overrides for aioir train
[ -f "$CONFIG" ] || { echo "gpu_sitting: $CONFIG: no such config"; exit 2; }
NAME="${NAME:-$(basename "$CONFIG" .yaml)}"
DEVICE="${DEVICE:-cuda}"
OUT="${OUT:-runs/gpu-sitting-out}"
PY="${PYTHON:-python3}"
RUN="runs/$NAME"
COMMITTED="checkpoints/$NAME/last.ckpt"
mkdir -p "$OUT" "$RUN/checkpoints"
exec > >(tee "$OUT/sitting.log") 2>&1

[ -d "$CORPUS" ] || { echo "gpu_sitting: $CORPUS missing: carry it (see the header)"; exit 2; }
# the image's python holds torch, lightning, safetensors…; install aioir itself for its entry points
[ -n "${SKIP_INSTALL:-}" ] || "$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

resume=()
overrides=(data.root="$CORPUS" trainer.max_time="00:00:$(printf %02d "$MINUTES"):00")
if [ -f "$COMMITTED" ]; then
  cp "$COMMITTED" "$RUN/checkpoints/last.ckpt"
  resume=(--resume auto)
elif [ -n "$INIT" ]; then
  overrides+=(model.checkpoint="$INIT")
fi
echo "gpu_sitting: $CONFIG as $RUN, $MINUTES min, ${resume[*]:-fresh start} $(date -u +%FT%TZ)"
"$PY" -m aioir train --config "$CONFIG" --output "$RUN" "${resume[@]}" \
  --set "${overrides[@]}" "${EXTRA[@]}"

cp "$RUN/checkpoints/last.ckpt" "$OUT/"
for f in model.safetensors config.json bank.safetensors; do
  [ ! -f "$RUN/export/$f" ] || cp "$RUN/export/$f" "$OUT/"
done
metrics="$(ls -d "$RUN"/logs/version_* | sort -V | tail -1)/metrics.csv"
[ -f "$metrics" ] && cp "$metrics" "$OUT/" || echo "gpu_sitting: no $metrics (nothing logged yet)"
"$PY" -m aioir evaluate --model "$RUN/export" --benchmark "$BENCHMARK" \
  --json "$OUT/eval.json" --device "$DEVICE"
