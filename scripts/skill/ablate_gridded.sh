#!/usr/bin/env bash
# The gridded ablations of docs/results.md: one change at a time against a
# base run, equal compute (the same steps of the same-size model, unless the
# change is the size), validation year only (2021). Each run trains in
# RUNS/<name> and logs its validation loss and one-step validation skill
# (RMSE / persistence RMSE, train.val_levels) to RUNS/<name>/tessera.jsonl;
# `tessera plot plot.logs=...` draws the curves, and the last lines printed
# are the table.
#
#   scripts/skill/ablate_gridded.sh DATA STATS RUNS [name ...]
#
# DATA is a folder of ERA5-format files covering 2010-2021 (tessera
# synth-era5 synth.start=2010-01-01 synth.days=4748) and STATS their
# statistics of the training years (tessera stats stats.end=2021-01-01).
# With names, only those runs run (a run with RUNS/<name>/done is kept).
set -euo pipefail
usage="usage: ablate_gridded.sh DATA STATS RUNS [name ...]"
DATA=${1:?$usage}
STATS=${2:?$usage}
RUNS=${3:?$usage}
shift 3
TESSERA=${TESSERA:-$(dirname "$0")/../../build/tessera}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

BASE=(data.files="$DATA/*.nc" data.stats="$STATS" train.step_hours=24
      model.dim=128 model.heads=4 model.hidden=512 model.depth=4 model.window=8
      train.batch=4 train.steps=600 train.warmup=30 train.lr=5e-4 train.lr_min=1e-5 train.ema=0.99
      train.start=2010-01-01 train.end=2021-01-01 train.val_start=2021-01-01 train.val_end=2022-01-01
      train.val_every=150 train.val_samples=8 train.val_levels=6 train.val_members=4 train.log_every=20 train.checkpoint_every=600)

declare -A CHANGE=(
  [base]=""
  [regress]="model.objective=regress"
  [lr1e-3]="train.lr=1e-3"
  [wd0.01]="train.weight_decay=0.01"
  [sigma_aeris]="train.sigma_min=0.2 train.sigma_max=500"
  [sigma_narrow]="train.sigma_max=20"
  [batch8]="train.batch=8 train.steps=300"
  [deep8]="model.depth=8 model.dim=96 model.heads=4 model.hidden=384"
)
ORDER=(base regress lr1e-3 wd0.01 sigma_aeris sigma_narrow batch8 deep8)
[ $# -gt 0 ] && ORDER=("$@")

for name in "${ORDER[@]}"; do
  [ -v "CHANGE[$name]" ] || { echo "ablate_gridded.sh: unknown run '$name' (known: ${!CHANGE[*]})" >&2; exit 2; }
  out="$RUNS/$name"
  if [ -f "$out/done" ]; then echo "== $name: done before, kept"; continue; fi
  rm -rf "$out" && mkdir -p "$out"
  echo "== $name: ${CHANGE[$name]:-(base)}"
  # shellcheck disable=SC2086
  "$TESSERA" train out="$out" "${BASE[@]}" ${CHANGE[$name]} > "$out/train.log" 2>&1
  touch "$out/done"
done

# the table: the last validation of each run
printf '%-14s %-40s %9s %9s %9s %9s %8s\n' run change val_loss skill z500 t850 minutes
for name in "${ORDER[@]}"; do
  log="$RUNS/$name/tessera.jsonl"
  [ -f "$log" ] || continue
  python3 - "$log" "$name" "${CHANGE[$name]:-(base)}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
start = next(r["t"] for r in rows if r.get("event") == "start") if any(r.get("event") == "start" for r in rows) else rows[0]["t"]
val = [r for r in rows if r.get("event") == "train_step" and isinstance(r.get("val_loss"), (int, float))]
if not val: sys.exit(0)
v = val[-1]
print("%-14s %-40s %9.4f %9.4f %9.4f %9.4f %8.1f" % (sys.argv[2], sys.argv[3][:40], v["val_loss"], v.get("val_skill", float("nan")),
      v.get("val_skill_z500", float("nan")), v.get("val_skill_t850", float("nan")), (v["t"] - start) / 60))
PY
done
