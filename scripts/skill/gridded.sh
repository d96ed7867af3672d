#!/usr/bin/env bash
# The gridded recipe on the evaluation protocol, end to end, and its goals
# as JSON lines (scripts/skill/goals.py):
#   data        synth-era5 at 5.625 deg, 2010-01-01 .. 2022-12-31
#   statistics  the training years 2010-2020 only (the climatology baseline too)
#   training    jobs/recipes/gridded.yaml: train 2010-2020, validation 2021
#   test        2022: 12 initial times (00 UTC on the 1st of each month),
#               8 members, leads 1-5 days, 10 sampler levels, churn 1 (chosen
#               on 2021: scripts/skill/sweep_forecast.sh), against
#               persistence and climatology
#
#   scripts/skill/gridded.sh OUT [key=value ...]
#
# OUT/data is made once and reused; extra key=value pairs go to train (for
# example train.steps=600 for a short check). Prints the goals; the
# scorecard, curves and plots are in OUT. Run it on a quiet machine with
# OMP_NUM_THREADS=2 for the figures in docs/results.md.
set -euo pipefail
OUT=${1:?usage: gridded.sh OUT [key=value ...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../../build/tessera}
RECIPE=$HERE/../../jobs/recipes/gridded.yaml
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

if [ ! -f "$OUT/data/done" ]; then
  stamp "synth-era5 2010-2022"
  "$TESSERA" synth-era5 out="$OUT/data" synth.start=2010-01-01 synth.days=4748 >"$OUT/synth.log"
  touch "$OUT/data/done"
fi
FILES="$OUT/data/*.nc"
if [ ! -f "$OUT/stats.nc" ]; then
  stamp "stats of 2010-2020"
  "$TESSERA" stats out="$OUT" data.files="$FILES" stats.residual_hours=6,24 stats.end=2021-01-01 >"$OUT/stats.log"
fi
stamp "train (jobs/recipes/gridded.yaml $*)"
"$TESSERA" train "$RECIPE" out="$OUT" data.files="$FILES" "$@" >"$OUT/train.log"
INITS=$(printf '2022-%02d-01,' $(seq 1 12))
stamp "forecast 2022"
"$TESSERA" forecast out="$OUT" data.files="$FILES" forecast.inits="${INITS%,}" forecast.members=8 forecast.leads=5 \
  forecast.levels=10 forecast.churn=1 >"$OUT/forecast.log"
stamp "score"
"$TESSERA" score out="$OUT" data.files="$FILES" >"$OUT/score.log"
"$TESSERA" plot out="$OUT" data.files="$FILES" plot.variables=z500,t850,t2m plot.leads=24,120 >"$OUT/plot.log"
"$TESSERA" plot out="$OUT" plot.logs="$OUT/tessera.jsonl" plot.labels=gridded >>"$OUT/plot.log"
stamp "goals"
python3 "$HERE/goals.py" gridded "$OUT/scorecard.csv"
