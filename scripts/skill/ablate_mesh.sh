#!/usr/bin/env bash
# The mesh ablations of docs/results.md: one change at a time against a base
# run at equal compute (the same steps of the same model; runs whose steps
# cost more take fewer: pf4 and pf16 by their step times measured beside
# pf1's, 1.08x and 1.81x), judged on the
# validation trajectories only. Each run trains in RUNS/<name> (validation
# loss and one-step skill in RUNS/<name>/tessera.jsonl, for `tessera plot`),
# then rolls every trajectory of VALID out over its full length with the
# raw and with the EMA weights and scores it (scripts/skill/mesh_eval.sh);
# the last lines printed are the table: RMSE / persistence, pooled over the
# validation trajectories, one step, over the first 50 rollout steps and
# over the whole rollout.
#
#   scripts/skill/ablate_mesh.sh TRAIN VALID RUNS [name ...]
#
# TRAIN and VALID are synth-mesh files (graph-physics HDF5), made with
# different seeds (docs/results.md gives the commands). With names, only
# those runs run (a run with RUNS/<name>/done is kept). OMP_NUM_THREADS
# (default 2) sets the threads of each run.
set -euo pipefail
usage="usage: ablate_mesh.sh TRAIN VALID RUNS [name ...]"
TRAIN=${1:?$usage}
VALID=${2:?$usage}
RUNS=${3:?$usage}
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../../build/tessera}
export TESSERA OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

BASE=(model.kind=mesh mesh.file="$TRAIN" mesh.valid_file="$VALID" mesh.train_trajectories=0
      model.dim=64 model.heads=4 model.hidden=192 model.depth=4 mesh.globals=4 mesh.window=4
      train.batch=4 train.steps=2500 train.warmup=100 train.lr=1e-3 train.lr_min=1e-5 train.weight_decay=1e-4
      train.beta1=0.9 train.beta2=0.95 train.ema=0.99 train.val_every=250 train.val_samples=16 mesh.val_rollout=100
      train.log_every=50 train.checkpoint_every=2500)

declare -A CHANGE=(
  [base]=""
  [noise0]="mesh.noise=0"
  [noise0.005]="mesh.noise=0.005"
  [noise0.01]="mesh.noise=0.01"
  [noise0.05]="mesh.noise=0.05"
  [noise0.1]="mesh.noise=0.1"
  [traj8]="mesh.train_trajectories=8"
  [lr3e-3]="train.lr=3e-3"
  [push0.5]="mesh.pushforward=0.5"
  [offset0.02]="mesh.noise_offset=0.02"
  [push0.25]="mesh.pushforward=0.25"
  [pf1]="mesh.pushforward=0.5 mesh.noise_offset=0.02"
  [pf4]="mesh.pushforward=0.5 mesh.noise_offset=0.02 mesh.pushforward_steps=4 train.steps=2320 train.checkpoint_every=2320"
  [pf16]="mesh.pushforward=0.5 mesh.noise_offset=0.02 mesh.pushforward_steps=16 train.steps=1380 train.checkpoint_every=1380"
  [deep8]="model.depth=8 train.steps=1250 train.val_every=125 train.checkpoint_every=1250"
)
ORDER=(base noise0.005 noise0.05 traj8 push0.5)
[ $# -gt 0 ] && ORDER=("$@")

for name in "${ORDER[@]}"; do
  [ -v "CHANGE[$name]" ] || { echo "ablate_mesh.sh: unknown run '$name' (known: ${!CHANGE[*]})" >&2; exit 2; }
  out="$RUNS/$name"
  if [ -f "$out/done" ]; then echo "== $name: done before, kept"; continue; fi
  rm -rf "$out" && mkdir -p "$out"
  echo "== $(date -u +%H:%M:%S) $name: ${CHANGE[$name]:-(base)}"
  # shellcheck disable=SC2086
  "$TESSERA" train out="$out" "${BASE[@]}" ${CHANGE[$name]} > "$out/train.log" 2>&1
  for w in params ema; do
    "$HERE/mesh_eval.sh" "$out" "$out/checkpoint.h5" "$VALID" "$w" "$out/eval_$w"
  done
  touch "$out/done"
done

# the table: the last validation of each run, and its rollouts
printf '%-12s %-32s %8s %8s %8s %7s | %-6s %7s %9s %9s\n' run change val_loss val_skill val_roll minutes weights 1-step rollout50 all
for name in "${ORDER[@]}"; do
  log="$RUNS/$name/tessera.jsonl"
  [ -f "$log" ] || continue
  for w in params ema; do
    python3 - "$log" "$name" "${CHANGE[$name]:-(base)}" "$w" "$RUNS/$name/eval_$w/pooled.csv" <<'PY'
import csv, json, sys
log, name, change, w, pooled = sys.argv[1:6]
rows = [json.loads(l) for l in open(log)]
start = next((r["t"] for r in rows if r.get("event") == "train_begin"), rows[0]["t"])
val = [r for r in rows if r.get("event") == "train_step" and isinstance(r.get("val_loss"), (int, float))]
if not val: sys.exit(0)
v = val[-1]
ratio = {r["metric"]: float(r["ratio"]) for r in csv.DictReader(open(pooled))}
print("%-12s %-32s %8.4f %8.4f %8.4f %7.1f | %-6s %7.3f %9.3f %9.3f" % (name, change[:32], v["val_loss"], v.get("val_skill", float("nan")), v.get("val_rollout", float("nan")),
      (v["t"] - start) / 60, w, ratio["rmse_1step"], ratio["rmse_rollout50"], ratio["rmse_all_rollout"]))
PY
  done
done
