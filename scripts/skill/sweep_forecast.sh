#!/usr/bin/env bash
# One forecast key swept on the validation year, so that a sampler choice
# (forecast.churn, forecast.levels, ...) is made without the test period:
#
#   scripts/skill/sweep_forecast.sh RUN KEY V1,V2,... [YEAR]
#
# RUN is the output folder of scripts/skill/gridded.sh (its data/, stats.nc
# and checkpoint.h5). For each value V: the forecast of YEAR (default 2021,
# the protocol's validation year) from the 12 initial times at 00 UTC on the
# 1st of each month, 8 members, leads 1-5 days, 10 sampler levels, with
# KEY=V, scored into RUN/sweep/KEY=V/. Then a table, one row per value: the
# ensemble-mean RMSE of z500 and t850 over persistence's and the raw
# spread-skill ratio at each lead, and how many of the gridded recipe's goals
# (scripts/skill/goals.py) the year meets.
set -euo pipefail
RUN=${1:?usage: sweep_forecast.sh RUN KEY V1,V2,... [YEAR]}
KEY=${2:?usage: sweep_forecast.sh RUN KEY V1,V2,... [YEAR]}
VALUES=${3:?usage: sweep_forecast.sh RUN KEY V1,V2,... [YEAR]}
YEAR=${4:-2021}
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../../build/tessera}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
[ -f "$RUN/checkpoint.h5" ] && [ -f "$RUN/stats.nc" ] || { echo "sweep_forecast.sh: $RUN has no checkpoint.h5 and stats.nc (run scripts/skill/gridded.sh first)" >&2; exit 2; }
FILES="$RUN/data/*.nc"
INITS=$(printf "$YEAR-%02d-01," $(seq 1 12))
dirs=()
for v in ${VALUES//,/ }; do
  out="$RUN/sweep/$KEY=$v"
  dirs+=("$out")
  mkdir -p "$out"
  if [ ! -f "$out/scorecard.csv" ]; then
    echo "== $(date -u +%H:%M:%S) $KEY=$v: forecast and score $YEAR"
    "$TESSERA" forecast out="$out" data.files="$FILES" data.stats="$RUN/stats.nc" forecast.checkpoint="$RUN/checkpoint.h5" \
      forecast.inits="${INITS%,}" forecast.members=8 forecast.leads=5 forecast.levels=10 "$KEY=$v" >"$out/forecast.log" 2>&1
    "$TESSERA" score out="$out" data.files="$FILES" data.stats="$RUN/stats.nc" >"$out/score.log" 2>&1
  fi
done
GOALS=$HERE/goals.py python3 - "$KEY" "${dirs[@]}" <<'PY'
import csv, json, subprocess, sys, os
key, dirs = sys.argv[1], sys.argv[2:]
print(f"| {key} | z500 RMSE / persistence, d1..d5 | z500 spread-skill, d1..d5 | t850 spread-skill, d1..d5 | goals met |")
print("|---|---|---|---|---|")
for d in dirs:
    t = {}
    for r in csv.DictReader(open(f"{d}/scorecard.csv", newline="")):
        t[(r["variable"], r["level"], int(float(r["lead_hours"])), r["metric"], r["system"])] = float(r["value"])
    leads = sorted({k[2] for k in t})
    rr = " ".join(f"{t[('z','500',l,'rmse','tessera')] / t[('z','500',l,'rmse','persistence')]:.3f}" for l in leads)
    sz = " ".join(f"{t[('z','500',l,'spread_skill','tessera')]:.3f}" for l in leads)
    st = " ".join(f"{t[('t','850',l,'spread_skill','tessera')]:.3f}" for l in leads)
    g = subprocess.run([sys.executable, os.environ["GOALS"], "gridded", f"{d}/scorecard.csv"],
                       capture_output=True, text=True).stdout.strip().splitlines()
    s = json.loads(g[-1])
    print(f"| {d.rsplit('=', 1)[1]} | {rr} | {sz} | {st} | {s['passed']}/{s['goals']} |")
PY
