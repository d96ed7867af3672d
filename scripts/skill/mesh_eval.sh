#!/usr/bin/env bash
# Rolls every trajectory of a graph-physics file out with one checkpoint
# (tessera forecast model.kind=mesh, full length) and scores each (tessera
# score); writes EVAL/t<k>/ (rollout.nc, mesh_scorecard.csv) and
# EVAL/pooled.csv: per metric, the RMSE of tessera and of persistence pooled
# over the trajectories (the root of the mean of their squares, each
# trajectory weighing the same) and their ratio. Prints the pooled table.
#
#   scripts/skill/mesh_eval.sh RUN CHECKPOINT FILE WEIGHTS EVAL [key=value ...]
#
# RUN is the training folder (unused but for messages), WEIGHTS params or
# ema; extra key=value pairs go to forecast (for example
# mesh.rollout_steps=50).
set -euo pipefail
usage="usage: mesh_eval.sh RUN CHECKPOINT FILE WEIGHTS EVAL [key=value ...]"
RUN=${1:?$usage}
CKPT=${2:?$usage}
FILE=${3:?$usage}
W=${4:?$usage}
EVAL=${5:?$usage}
shift 5
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../../build/tessera}
n=$(/usr/bin/python3 -c 'import h5py, sys; print(len(h5py.File(sys.argv[1], "r").keys()))' "$FILE")
mkdir -p "$EVAL"
for ((k = 0; k < n; k++)); do
  o="$EVAL/t$k"
  mkdir -p "$o"
  "$TESSERA" forecast out="$o" model.kind=mesh mesh.test_file="$FILE" mesh.trajectory=$k forecast.checkpoint="$CKPT" \
    forecast.weights="$W" "$@" >"$o/forecast.log" 2>&1 || { tail -2 "$o/forecast.log"; echo "mesh_eval: forecast of $RUN failed" >&2; exit 1; }
  "$TESSERA" score out="$o" model.kind=mesh mesh.test_file="$FILE" mesh.trajectory=$k >"$o/score.log" 2>&1 ||
    { tail -2 "$o/score.log"; echo "mesh_eval: score of $RUN failed" >&2; exit 1; }
done
python3 - "$EVAL" "$n" "$W" <<'PY'
import csv, math, sys
ev, n, w = sys.argv[1], int(sys.argv[2]), sys.argv[3]
acc = {}
for k in range(n):
    for r in csv.DictReader(open("%s/t%d/mesh_scorecard.csv" % (ev, k))):
        acc.setdefault(r["metric"], {}).setdefault(r["system"], []).append(float(r["value"]))
with open(ev + "/pooled.csv", "w") as f:
    f.write("metric,tessera,persistence,ratio,trajectories\n")
    print("%s weights, %d trajectories (RMSE x 1e-3, pooled)" % (w, n))
    for m, s in acc.items():
        a, p = (math.sqrt(sum(x * x for x in s[k]) / len(s[k])) for k in ("tessera", "persistence"))
        f.write("%s,%.9g,%.9g,%.6f,%d\n" % (m, a, p, a / p, n))
        per = " ".join("%.3f" % (x / y) for x, y in zip(s["tessera"], s["persistence"]))
        print("  %-18s %9.2f %9.2f  ratio %.3f  (per trajectory: %s)" % (m, a * 1e3, p * 1e3, a / p, per))
PY
