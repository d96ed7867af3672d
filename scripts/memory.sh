#!/usr/bin/env bash
# Per-rank peak memory of tessera train and tessera forecast over rank
# layouts of 1 to 8 ranks, on one synthetic ERA5 set at 5.625 deg (32 x 64
# grid points) and one model, so that the terms that fall with the ranks
# show: activations (the model's arena) and data buffers fall as 1/N under
# WP and SP (and with the local batch under DP and micro-batches), and as
# 1/pp under pipeline stages (each holds its blocks' activations); weights,
# gradients and AdamW moments do not (every stage keeps the whole table);
# forecast rank 0 of the serial build also holds the whole ensemble it
# gathers to write.
#
#   scripts/memory.sh OUT [key=value ...]
#   ONLY=REGEX scripts/memory.sh OUT    only the runs whose "command layout" matches
#
# Writes OUT/memory.csv: command, layout, ranks, rss_peak_mb_min and _max
# over ranks (getrusage, as the logs carry them), activation_mb_max (train:
# the model's arena on the rank that needs most). Extra key=value pairs go
# to every run. TESSERA (default build/tessera) and mpiexec must be there;
# ranks beyond the cores are oversubscribed (memory, not time, is measured).
set -euo pipefail
OUT=${1:?usage: memory.sh OUT [key=value ...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
TESSERA=${TESSERA:-$HERE/../build/tessera}
export OMP_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$OUT/runs"
data=(data.files="$OUT/data/*.nc" data.variables=z500,t850,t2m,u10,v10 data.forcings=lsm,z_surface)
if [ ! -s "$OUT/data/stats.nc" ]; then
  "$TESSERA" synth-era5 out="$OUT/data" synth.days=4 synth.spinup_days=5 >"$OUT/data.log" 2>&1
  "$TESSERA" stats out="$OUT/data" "${data[@]}" stats.residual_hours=6 >>"$OUT/data.log" 2>&1
fi
model=(model.window=4 model.dim=128 model.heads=8 model.hidden=256 model.depth=4 model.t_freq=16
       train.step_hours=6 train.batch=8 train.steps=2 train.warmup=1 train.log_every=1 train.checkpoint_every=1000
       data.stats="$OUT/data/stats.nc" seed=1)
echo "command,layout,ranks,rss_peak_mb_min,rss_peak_mb_max,activation_mb_max" >"$OUT/memory.csv"
record() { # command layout ranks jsonl event
  python3 - "$@" >>"$OUT/memory.csv" <<'PY'
import json, sys
cmd, layout, ranks, path, event = sys.argv[1:6]
last = [e for e in map(json.loads, open(path)) if e.get("event") == event][-1]
print(f'{cmd},{layout},{ranks},{last["rss_peak_mb_min"]},{last["rss_peak_mb_max"]},{last.get("activation_mb_max", "")}')
PY
}
run() { # command ranks layout-keys...
  local cmd=$1 n=$2
  shift 2
  if [ -n "${ONLY:-}" ] && ! echo "$cmd ${*:-1}" | grep -Eq "$ONLY"; then return; fi
  local name
  name=$(echo "${*:-one}" | tr ' =.' '_\-\-')
  local dir=$OUT/runs/$cmd-$name
  rm -rf "$dir"
  if [ "$cmd" = train ]; then
    mpiexec -n "$n" "$TESSERA" train out="$dir" "${data[@]}" "${model[@]}" "$@" "${USER_KEYS[@]}" >"$dir.log" 2>&1
    record train "${*:-1}" "$n" "$dir/tessera.jsonl" train_step
  else
    mpiexec -n "$n" "$TESSERA" forecast out="$dir" forecast.checkpoint="$OUT/runs/train-one/checkpoint.h5" \
      data.files="$OUT/data/*.nc" forecast.inits=2020-01-02 forecast.members=8 forecast.leads=2 forecast.levels=2 \
      "$@" "${USER_KEYS[@]}" >"$dir.log" 2>&1
    record forecast "${*:-1}" "$n" "$dir/tessera.jsonl" forecast_lead
  fi
  echo "$cmd ${*:-1 rank}: $(tail -1 "$OUT/memory.csv")"
}
USER_KEYS=("$@")
run train 1
for mb in 2 4; do run train 1 train.micro_batches=$mb; done
for n in 2 4 8; do run train "$n" parallel.dp="$n"; done
for n in 2 4 8; do run train "$n" parallel.wp_x="$n"; done
for n in 2 4 8; do run train "$n" parallel.sp="$n"; done
run train 4 parallel.wp_x=2 parallel.sp=2
run train 8 parallel.dp=2 parallel.wp_x=2 parallel.sp=2
for n in 2 4; do run train "$n" parallel.pp="$n" train.micro_batches="$n"; done
[ -s "$OUT/runs/train-one/checkpoint.h5" ] || ONLY= run train 1
run forecast 1
for n in 2 4 8; do run forecast "$n" parallel.dp="$n"; done
for n in 2 4 8; do run forecast "$n" parallel.wp_x="$n"; done
for n in 2 4 8; do run forecast "$n" parallel.sp="$n"; done
for n in 2 4; do run forecast "$n" parallel.pp="$n"; done
column -s, -t "$OUT/memory.csv"
