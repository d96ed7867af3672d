#!/usr/bin/env bash
# Skill guards for the gridded model (release stage; about 2 minutes):
# a tiny Swin diffusion model trained for 600 steps on 9 months of
# synth-era5 data must
# - lower its validation loss to <= 0.80 of the initial weights' value
#   (measured 0.63; with the blocks untrainable, as in versions before 0.2,
#   a smaller run only reached 0.92);
# - forecast the validation month one day ahead with an ensemble-mean RMSE
#   below persistence's, mean over channels <= 0.95 (measured 0.88);
# - and, rolled out by tessera forecast and scored by tessera score on the
#   held-out test months (8 initial times, 4 members), beat persistence's
#   day-1 RMSE for z500, t850 and t2m (measured 0.88-0.91) and on the mean
#   ratio over all nine variables <= 0.95 (measured 0.89).
# A silent learning bug (a branch that never trains, a wrong target or
# sign, noise that leaks the answer and then vanishes at sampling) fails
# one of them. The margins come from the measured values above; the run is
# deterministic for a given build and thread count.
# usage: test_skill.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=2

"$tessera" synth-era5 out="$tmp/data" synth.start=2021-01-01 synth.days=365 synth.spinup_days=30 >"$tmp/synth.log" 2>&1 ||
  { cat "$tmp/synth.log"; echo "FAIL: synth-era5"; exit 1; }
# statistics of the training months only; the scorer's climatology from the whole year
"$tessera" stats out="$tmp" data.files="$tmp/data/*.nc" stats.residual_hours=24 stats.end=2021-10-01 >/dev/null 2>&1 ||
  { echo "FAIL: stats"; exit 1; }
mkdir -p "$tmp/all"
"$tessera" stats out="$tmp/all" data.files="$tmp/data/*.nc" stats.residual_hours=24 >/dev/null 2>&1 ||
  { echo "FAIL: stats of the whole year"; exit 1; }

"$tessera" train out="$tmp/run" data.files="$tmp/data/*.nc" data.stats="$tmp/stats.nc" train.step_hours=24 \
  model.dim=48 model.heads=2 model.hidden=96 model.depth=2 model.window=8 model.t_freq=32 \
  train.batch=4 train.steps=600 train.warmup=20 train.lr=2e-3 train.lr_min=1e-4 train.ema=0.95 train.weight_decay=0.01 \
  train.end=2021-10-01 train.val_start=2021-10-01 train.val_end=2021-11-01 train.val_every=600 train.val_samples=8 \
  train.val_levels=4 train.log_every=100 >"$tmp/train.log" 2>&1 || { tail -3 "$tmp/train.log"; echo "FAIL: train"; exit 1; }

read -r v0 v1 skill <<<"$(/usr/bin/python3 - "$tmp/run/tessera.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
val = [r for r in rows if r.get("event") in ("validation", "train_step") and isinstance(r.get("val_loss"), (int, float))]
print(val[0]["val_loss"], val[-1]["val_loss"], val[-1]["val_skill"])
PY
)"
echo "validation loss $v0 -> $v1, validation skill (RMSE / persistence) $skill"
awk -v a="$v0" -v b="$v1" 'BEGIN { exit !(b <= 0.80 * a) }' && ok || fail "validation loss $v0 -> $v1: not <= 0.80 x"
awk -v s="$skill" 'BEGIN { exit !(s <= 0.95) }' && ok || fail "validation skill $skill > 0.95"

"$tessera" forecast out="$tmp/run" data.files="$tmp/data/*.nc" forecast.members=4 forecast.leads=1 forecast.levels=6 \
  forecast.inits=2021-11-05,2021-11-12,2021-11-19,2021-11-26,2021-12-03,2021-12-10,2021-12-17,2021-12-24 \
  >"$tmp/forecast.log" 2>&1 || { tail -3 "$tmp/forecast.log"; echo "FAIL: forecast"; exit 1; }
"$tessera" score out="$tmp/run" data.files="$tmp/data/*.nc" data.stats="$tmp/all/stats.nc" score.bootstrap=0 \
  >"$tmp/score.log" 2>&1 || { tail -3 "$tmp/score.log"; echo "FAIL: score"; exit 1; }
while read -r name ratio; do
  echo "test months, day-1 RMSE / persistence: $name $ratio"
  case $name in
    z500 | t850 | t2m) awk -v r="$ratio" 'BEGIN { exit !(r < 1) }' && ok || fail "$name day-1 RMSE $ratio x persistence" ;;
    mean) awk -v r="$ratio" 'BEGIN { exit !(r <= 0.95) }' && ok || fail "mean day-1 RMSE ratio $ratio > 0.95" ;;
  esac
done < <(/usr/bin/python3 - "$tmp/run/scorecard.csv" <<'PY'
import csv, sys
rmse = {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["metric"] == "rmse" and r["lead_hours"] == "24":
        rmse[(r["variable"] + r["level"], r["system"])] = float(r["value"])
ratios = {v: rmse[(v, "tessera")] / rmse[(v, "persistence")] for v, s in rmse if s == "tessera"}
base = [v for v in ratios if v in ("z500", "t850", "q700", "u850", "v850", "t2m", "u10", "v10", "msl")]
for v in ("z500", "t850", "t2m"):
    print(v, round(ratios[v], 4))
print("mean", round(sum(ratios[v] for v in base) / len(base), 4))
PY
)

finish 6
