#!/usr/bin/env bash
# ABAIR-tiny (phase I pre-training -> phase II adapters -> phase III multi-label estimator on
# single + composite tasks) vs PromptIR-tiny trained for as many steps as the three phases
# together, both on the photo corpus with the same synthetic single-task data, scored on the
# CDD-11-like composite benchmark (docs/methods/abair.md, "Composite degradations").
#
#   benchmarks/abair_composite.sh CORPUS OUT [S1 S2 S3]
#
# CORPUS: a photo corpus (aioir data photos; train/val/test splits). S1/S2/S3: steps of the
# three ABAIR phases (PromptIR gets S1+S2+S3). Environment: PATCH (training patch, 48), CROP
# (benchmark crop, 64), SEED (123), PYTHON (python). One thread throughout.
set -euo pipefail
CORPUS=$1
OUT=$2
S1=${3:-80}
S2=${4:-40}
S3=${5:-40}
PATCH=${PATCH:-48}
CROP=${CROP:-64}
SEED=${SEED:-123}
PYTHON=${PYTHON:-python}
export OMP_NUM_THREADS=1
CONFIGS=$(cd "$(dirname "$0")/../configs" && pwd)
mkdir -p "$OUT"

common=(
  --set "data.root=$CORPUS" --set "data.patch_size=$PATCH" --set "data.val_size=$PATCH"
  --set data.samples_per_task=1 --set data.num_workers=0 --set data.val_items_per_task=1
  --set trainer.num_threads=1 --set "trainer.seed=$SEED" --set trainer.progress_bar=false
  --set trainer.max_epochs=1000 --set "scheduler={name: constant}" --set optimizer.lr=1.0e-3
)
train() { "$PYTHON" -m aioir train "$@" "${common[@]}"; }

train --config "$CONFIGS/abair/tiny-cpu.yaml" --set "trainer.max_steps=$S1" --output "$OUT/abair-pretrain"
train --config "$CONFIGS/abair/adapters.yaml" --set model.name=abair-tiny \
  --set "abair.base=$OUT/abair-pretrain/export" --set "trainer.max_steps=$S2" --output "$OUT/abair-adapters"
train --config "$CONFIGS/abair/estimator-composite.yaml" --set model.name=abair-tiny \
  --set "abair.base=$OUT/abair-adapters/export" --set "trainer.max_steps=$S3" --output "$OUT/abair-estimator"
train --config "$CONFIGS/abair/tiny-cpu.yaml" --set model.name=promptir-tiny --set "model.overrides={}" \
  --set data.cutmix=false --set "losses={l1: 1.0}" --set "abair={}" \
  --set "trainer.max_steps=$((S1 + S2 + S3))" --output "$OUT/promptir"

bench=(--benchmark "composite:$CORPUS" --benchmark "composite:$CORPUS:blur+noise" --crop "$CROP" --no-progress)
evaluate() { "$PYTHON" -m aioir evaluate "${bench[@]}" "$@"; }
evaluate --model "$OUT/abair-estimator/export" --json "$OUT/abair-sw.json" > "$OUT/abair-sw.md"
evaluate --model "$OUT/abair-estimator/export" --adapter-mode onehot --json "$OUT/abair-oh.json" > "$OUT/abair-oh.md"
evaluate --model "$OUT/abair-estimator/export" --task case --json "$OUT/abair-oracle.json" > "$OUT/abair-oracle.md"
evaluate --model "$OUT/abair-estimator/export" --adapter-mode off --json "$OUT/abair-off.json" > "$OUT/abair-off.md"
evaluate --model "$OUT/promptir/export" --json "$OUT/promptir.json" > "$OUT/promptir.md"
echo "done: $OUT"
