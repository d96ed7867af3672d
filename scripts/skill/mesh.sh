#!/usr/bin/env bash
# The mesh recipe on the evaluation protocol, end to end, and its goals as
# JSON lines (scripts/skill/goals.py mesh):
#   data        synth-mesh at lattice 80, each set with its own seed:
#               train 32 trajectories (seed 11), validation 2 (seed 22),
#               test 4 (seed 33), Re 100-200; out of distribution 2
#               trajectories at Re 220-280 (seed 44, lattice 96)
#   training    jobs/recipes/mesh.yaml on train, validated on validation
#   test        every test and out-of-distribution trajectory rolled out
#               over its full length (599 steps) from its first state,
#               against persistence (scripts/skill/mesh_eval.sh)
#
#   scripts/skill/mesh.sh OUT [key=value ...]
#
# OUT/data is made once and reused; extra key=value pairs go to train (for
# example train.steps=500 for a short check); WEIGHTS=ema in the
# environment rolls out the EMA weights instead of the raw ones (the
# default, fixed before the recipe was measured). Prints the goals; scores,
# rollouts and curves are in OUT. Run it on a quiet machine with
# OMP_NUM_THREADS=2 for the figures in docs/results.md.
set -euo pipefail
OUT=${1:?usage: mesh.sh OUT [key=value ...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../../build/tessera}
RECIPE=$HERE/../../jobs/recipes/mesh.yaml
export TESSERA OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
WEIGHTS=${WEIGHTS:-params}
mkdir -p "$OUT/data"
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

make_set() { # name seed trajectories [key=value ...]
  local name=$1 seed=$2 n=$3
  shift 3
  [ -f "$OUT/data/$name/done" ] && return
  stamp "synth-mesh $name ($n trajectories, seed $seed)"
  "$TESSERA" synth-mesh out="$OUT/data/$name" seed="$seed" synth_mesh.trajectories="$n" "$@" >"$OUT/data/$name.log"
  touch "$OUT/data/$name/done"
}
make_set train 11 32 synth_mesh.lattice=80
make_set valid 22 2 synth_mesh.lattice=80
make_set test 33 4 synth_mesh.lattice=80
make_set ood 44 2 synth_mesh.lattice=96 synth_mesh.re_min=220 synth_mesh.re_max=280

stamp "train (jobs/recipes/mesh.yaml $*)"
"$TESSERA" train "$RECIPE" out="$OUT" mesh.file="$OUT/data/train/synth_mesh.h5" \
  mesh.valid_file="$OUT/data/valid/synth_mesh.h5" "$@" >"$OUT/train.log"
for set in test ood; do
  stamp "roll out and score the $set trajectories ($WEIGHTS weights)"
  "$HERE/mesh_eval.sh" "$OUT" "$OUT/checkpoint.h5" "$OUT/data/$set/synth_mesh.h5" "$WEIGHTS" "$OUT/eval_$set"
done
"$TESSERA" plot out="$OUT" plot.logs="$OUT/tessera.jsonl" >"$OUT/plot.log"
stamp "goals"
python3 "$HERE/goals.py" mesh "$OUT/eval_test/pooled.csv" test
python3 "$HERE/goals.py" mesh "$OUT/eval_ood/pooled.csv" ood
