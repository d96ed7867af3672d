#!/usr/bin/env bash
# The disk filling during a checkpoint or a forecast write, without
# privileges: tessera runs with the write interposer of enospc.c preloaded,
# which fails writes to the matching file with ENOSPC once an allowance of
# bytes has gone to it. Each run must end with exit 1 and one error line
# that says so (no crash in a library's exit handlers), leave the last
# checkpoint intact and the forecast's complete leads readable and equal to
# an uninterrupted run's, and a rerun on a disk with room must resume.
#
#   test_enospc.sh TESSERA LIBTESSERA_ENOSPC
tessera=$1
preload=$2
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
full() { LD_PRELOAD="$preload" TESSERA_ENOSPC_MATCH=$1 TESSERA_ENOSPC_AFTER=$2 "${@:3}"; }
one_enospc_line() { # log, file named in it
  [ "$(grep -c '^tessera: ' "$1")" = 1 ] && grep '^tessera: error: ' "$1" | grep -q "$2.*No space left on device"
}

mkdir -p "$tmp/data"
"$(dirname "$tessera")/tests/test_era5" --write "$tmp/data" >/dev/null 2>&1 || { echo "cannot write test data"; exit 1; }
data=(data.files="$tmp/data/cds_*.nc" data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface)
"$tessera" stats out="$tmp/s" "${data[@]}" stats.residual_hours=6 >"$tmp/stats.log" 2>&1 || fail "stats"
train=(train "${data[@]}" train.step_hours=6 model.window=4 model.dim=16 model.heads=2 model.hidden=24 model.depth=2
       model.t_freq=8 train.batch=2 train.steps=4 train.checkpoint_every=2)

# the interposer itself: with no allowance, the first checkpoint cannot be
# written, and no .part is left behind
mkdir -p "$tmp/t0" && cp "$tmp/s/stats.nc" "$tmp/t0/"
full checkpoint.h5.part 0 "$tessera" "${train[@]}" out="$tmp/t0" >"$tmp/t0.log" 2>&1
rc=$?
[ $rc = 1 ] && one_enospc_line "$tmp/t0.log" "checkpoint.h5.part" && [ ! -e "$tmp/t0/checkpoint.h5" ] &&
  [ ! -e "$tmp/t0/checkpoint.h5.part" ] && ok || fail "checkpoint on a full disk: exit $rc, $(tail -2 "$tmp/t0.log")"

# room for one checkpoint and a half: step 2's lands, step 4's does not
mkdir -p "$tmp/ref" && cp "$tmp/s/stats.nc" "$tmp/ref/"
"$tessera" "${train[@]}" out="$tmp/ref" train.steps=2 >"$tmp/ref.log" 2>&1 && ok || fail "a checkpoint's size"
size=$(stat -c %s "$tmp/ref/checkpoint.h5")
mkdir -p "$tmp/t" && cp "$tmp/s/stats.nc" "$tmp/t/"
full checkpoint.h5.part $((size * 3 / 2)) "$tessera" "${train[@]}" out="$tmp/t" >"$tmp/t.log" 2>&1
rc=$?
[ $rc = 1 ] && one_enospc_line "$tmp/t.log" "checkpoint.h5.part" && [ ! -e "$tmp/t/checkpoint.h5.part" ] &&
  ok || fail "second checkpoint on a full disk: exit $rc, $(tail -2 "$tmp/t.log")"
if /usr/bin/python3 - "$tmp/t/checkpoint.h5" <<'PY'; then ok; else fail "the last checkpoint is not intact"; fi
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert int(f.attrs["step"]) == 2, dict(f.attrs)
    for name, d in f["params"].items():
        d[...]  # every array reads, its checksum verified
PY
"$tessera" "${train[@]}" out="$tmp/t" >"$tmp/t2.log" 2>&1 && grep -q "resum" "$tmp/t2.log" &&
  ok || fail "resume after the full disk: $(tail -2 "$tmp/t2.log")"

# a forecast: the disk fills in the middle of the rollout
fc=(forecast forecast.checkpoint="$tmp/ref/checkpoint.h5" "${data[@]}" forecast.inits=2020-01-01,2020-01-01T06
    forecast.members=4 forecast.leads=3 forecast.levels=6 seed=5)
"$tessera" "${fc[@]}" out="$tmp/f0" >"$tmp/f0.log" 2>&1 && ok || fail "uninterrupted forecast"
size=$(stat -c %s "$tmp/f0/forecast.nc")
full forecast.nc.part $((size * 3 / 4)) "$tessera" "${fc[@]}" out="$tmp/f" >"$tmp/f.log" 2>&1
rc=$?
[ $rc = 1 ] && one_enospc_line "$tmp/f.log" "forecast.nc.part" && [ -e "$tmp/f/forecast.nc.part" ] &&
  [ ! -e "$tmp/f/forecast.nc" ] && ok || fail "forecast on a full disk: exit $rc, $(tail -2 "$tmp/f.log")"
if /usr/bin/python3 - "$tmp/f/forecast.nc.part" "$tmp/f0/forecast.nc" <<'PY'; then ok; else fail "complete leads"; fi
import sys
import numpy as np, netCDF4
part, whole = netCDF4.Dataset(sys.argv[1]), netCDF4.Dataset(sys.argv[2])
k = int(part.tessera_complete_leads)
assert 1 <= k < 3, k  # the allowance ends the rollout after a complete lead
for v in ("z", "t", "t2m", "u10"):
    assert np.array_equal(np.array(part[v][:, :, :k]), np.array(whole[v][:, :, :k]), equal_nan=True), v
print("complete leads before the full disk:", k)
PY
"$tessera" "${fc[@]}" out="$tmp/f" >"$tmp/f2.log" 2>&1 && grep -q "resuming" "$tmp/f2.log" &&
  ok || fail "forecast resume after the full disk: $(tail -2 "$tmp/f2.log")"
if /usr/bin/python3 - "$tmp/f/forecast.nc" "$tmp/f0/forecast.nc" <<'PY'; then ok; else fail "resumed forecast differs"; fi
import sys
import numpy as np, netCDF4
a, b = netCDF4.Dataset(sys.argv[1]), netCDF4.Dataset(sys.argv[2])
for v in ("z", "t", "t2m", "u10"):
    assert np.array_equal(np.array(a[v][:]), np.array(b[v][:]), equal_nan=True), v
PY

finish 10
