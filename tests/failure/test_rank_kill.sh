#!/usr/bin/env bash
# One rank killed in the middle of a training step (kill -9 of one MPI
# process, as a node failure or the OOM killer does it): the job must end
# by itself within 30 s rather than hang on a collective and burn the
# allocation, leave the last checkpoint whole, and a rerun must resume from
# it and end bit-identical to a run that was never killed.
#
#   test_rank_kill.sh TESSERA
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

mkdir -p "$tmp/data"
"$(dirname "$tessera")/tests/test_era5" --write "$tmp/data" >/dev/null 2>&1 || { echo "cannot write test data"; exit 1; }
data=(data.files="$tmp/data/cds_*.nc" data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface)
"$tessera" stats out="$tmp/s" "${data[@]}" stats.residual_hours=6 >"$tmp/stats.log" 2>&1 || fail "stats"
steps=400
train=(mpiexec -n 2 "$tessera" train "${data[@]}" train.step_hours=6 model.window=4 model.dim=16 model.heads=2
       model.hidden=24 model.depth=2 model.t_freq=8 train.batch=2 train.steps=$steps train.checkpoint_every=10
       train.log_every=10 parallel.dp=2)
for run in ref k; do mkdir -p "$tmp/$run" && cp "$tmp/s/stats.nc" "$tmp/$run/"; done
"${train[@]}" out="$tmp/ref" >"$tmp/ref.log" 2>&1 && ok || fail "uninterrupted 2-rank run: $(tail -2 "$tmp/ref.log")"

"${train[@]}" out="$tmp/k" >"$tmp/k1.log" 2>&1 &
pid=$!
# once a few checkpoints are written, kill one rank (a child of mpiexec)
for i in $(seq 1 3000); do grep -q "^step 50/" "$tmp/k1.log" 2>/dev/null && break; sleep 0.01; done
victim=$(pgrep -P $pid -f "tessera train" | tail -1)
if [ -n "$victim" ] && kill -0 $pid 2>/dev/null; then
  t0=$(date +%s.%N)
  kill -9 "$victim"
  ended=0
  for i in $(seq 1 300); do kill -0 $pid 2>/dev/null || { ended=1; break; }; sleep 0.1; done
  wait $pid
  rc=$?
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
  echo "the job ended ${secs} s after the kill, exit $rc"
  [ $ended = 1 ] && [ $rc != 0 ] && ok || fail "the job did not end within 30 s of a rank's death (exit $rc)"
  [ ! -e "$tmp/k/checkpoint.h5" ] && fail "no checkpoint before the kill"
  if /usr/bin/python3 - "$tmp/k/checkpoint.h5" $steps <<'PY'; then ok; else fail "the last checkpoint is not whole"; fi
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    step = int(f.attrs["step"])
    assert 10 <= step < int(sys.argv[2]) and step % 10 == 0, step
    for group in ("params", "ema", "adam_m", "adam_v"):
        for d in f[group].values():
            d[...]  # every array reads, its checksum verified
print("checkpoint of step", step, "whole after the kill")
PY
else
  kill $pid 2>/dev/null
  fail "the run ended before a rank could be killed (a faster machine: raise steps)"
fi
"${train[@]}" out="$tmp/k" >"$tmp/k2.log" 2>&1 && grep -q "resuming" "$tmp/k2.log" &&
  ok || fail "resume after the kill: $(tail -2 "$tmp/k2.log")"
if /usr/bin/python3 - "$tmp/k/checkpoint.h5" "$tmp/ref/checkpoint.h5" <<'PY'; then ok; else fail "the resumed run differs"; fi
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as a, h5py.File(sys.argv[2], "r") as b:
    assert int(a.attrs["step"]) == int(b.attrs["step"])
    for group in ("params", "ema", "adam_m", "adam_v"):
        for name in b[group]:
            assert np.array_equal(a[group][name][...], b[group][name][...]), (group, name)
print("resumed run bit-identical to the uninterrupted one")
PY

finish 5
