#!/usr/bin/env bash
# tessera forecast end to end on small ERA5-format files and a briefly
# trained checkpoint:
# - the same layout reproduces the forecast bit for bit;
# - DP = 2 ranks, WP = 3 x 1, 1 x 2, DP 2 x WP 1 x 2, SP = 2, DP 2 x SP 2 and
#   WP 1 x 2 x SP 2, PP 2, DP 2 x PP 2 and WP x SP x PP layouts, members in
#   micro-batches (1 rank, PP 2 pipelined over 4, DP 2 x PP 2 over 2), and
#   another thread count match the first lead within 1e-5
#   (norm-wise relative);
# - a rollout killed with SIGKILL after a complete lead, or stopped by
#   SIGUSR1 (on 1 and on 4 ranks), resumes and ends identical to an
#   uninterrupted one;
# - an independent reader (python3-netCDF4, xarray) checks the file;
# - bad input: one line, non-zero exit, no output file.
# usage: test_forecast.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

mkdir -p "$tmp/data"
"$(dirname "$tessera")/tests/test_era5" --write "$tmp/data" >/dev/null 2>&1 || { echo "cannot write test data"; exit 1; }
data=(data.files="$tmp/data/cds_*.nc" data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface)
"$tessera" stats out="$tmp/run" "${data[@]}" stats.residual_hours=6 >"$tmp/stats.log" 2>&1 || fail "stats"
"$tessera" train out="$tmp/run" "${data[@]}" train.step_hours=6 model.window=4 model.dim=16 model.heads=2 \
  model.hidden=24 model.depth=2 model.t_freq=8 train.steps=5 train.batch=2 >"$tmp/train.log" 2>&1 \
  && ok || fail "train: $(tail -2 "$tmp/train.log")"
# model.* and the data channels come from the checkpoint
fc=(forecast.checkpoint="$tmp/run/checkpoint.h5" data.files="$tmp/data/cds_*.nc" forecast.inits=2020-01-01,2020-01-01T06
    forecast.members=4 forecast.leads=3 forecast.levels=6 forecast.churn=1 seed=5)

"$tessera" forecast out="$tmp/a" "${fc[@]}" >"$tmp/a.log" 2>&1 && ok || fail "forecast: $(tail -2 "$tmp/a.log")"
"$tessera" forecast out="$tmp/b" "${fc[@]}" >"$tmp/b.log" 2>&1 && ok || fail "forecast again"
mpiexec -n 2 "$tessera" forecast out="$tmp/dp2" "${fc[@]}" parallel.dp=2 >"$tmp/dp2.log" 2>&1 && ok \
  || fail "forecast dp=2: $(tail -3 "$tmp/dp2.log")"
for layout in "wpy3 3 parallel.wp_y=3" "wpx2 2 parallel.wp_x=2" "dp2wpx2 4 parallel.dp=2 parallel.wp_x=2" \
  "sp2 2 parallel.sp=2" "dp2sp2 4 parallel.dp=2 parallel.sp=2" "wpx2sp2 4 parallel.wp_x=2 parallel.sp=2" \
  "pp2 2 parallel.pp=2" "dp2pp2 4 parallel.dp=2 parallel.pp=2" "wpx2sp2pp2 8 parallel.wp_x=2 parallel.sp=2 parallel.pp=2" \
  "mb2 1 forecast.micro_batches=2" "pp2mb4 2 parallel.pp=2 forecast.micro_batches=4" \
  "dp2pp2mb2 4 parallel.dp=2 parallel.pp=2 forecast.micro_batches=2"; do
  set -- $layout
  name=$1 np=$2
  shift 2
  mpiexec -n "$np" "$tessera" forecast out="$tmp/$name" "${fc[@]}" "$@" >"$tmp/$name.log" 2>&1 && ok \
    || fail "forecast $name: $(tail -3 "$tmp/$name.log")"
done
# the build's writer: collective (parallel NetCDF-4) or rank 0's
if "$tessera" --version | grep -q "parallel NetCDF-4"; then
  grep -q "written collectively" "$tmp/dp2sp2.log" && ok || fail "a parallel NetCDF-4 build did not write collectively"
else
  grep -q "written collectively" "$tmp/dp2sp2.log" && fail "a serial build claims a collective write" || ok
fi
OMP_NUM_THREADS=2 "$tessera" forecast out="$tmp/th2" "${fc[@]}" >"$tmp/th2.log" 2>&1 && ok || fail "forecast 2 threads"

# kill -9 after the first complete lead, then rerun the same command
slow=(forecast.levels=60)
"$tessera" forecast out="$tmp/k" "${fc[@]}" "${slow[@]}" >"$tmp/k1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "lead 1/3" "$tmp/k1.log" 2>/dev/null && break; sleep 0.01; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ -e "$tmp/k/forecast.nc.part" ] && [ ! -e "$tmp/k/forecast.nc" ] && ok || fail "a killed rollout must leave only forecast.nc.part"
"$tessera" forecast out="$tmp/k" "${fc[@]}" "${slow[@]}" >"$tmp/k2.log" 2>&1 && ok || fail "resume: $(tail -2 "$tmp/k2.log")"
grep -q "resuming" "$tmp/k2.log" && ok || fail "the rerun did not resume"
"$tessera" forecast out="$tmp/k0" "${fc[@]}" "${slow[@]}" >"$tmp/k0.log" 2>&1 && ok || fail "uninterrupted slow run"

# SIGUSR1 (a batch system's warning): the lead in progress completes, the
# file stays resumable, the exit is clean; the rerun ends identical too
"$tessera" forecast out="$tmp/u" "${fc[@]}" "${slow[@]}" >"$tmp/u1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "lead 1/3" "$tmp/u1.log" 2>/dev/null && break; sleep 0.01; done
kill -USR1 $pid 2>/dev/null
wait $pid
rc=$?
[ $rc = 0 ] && grep -q "stopped after lead" "$tmp/u1.log" && [ -e "$tmp/u/forecast.nc.part" ] && [ ! -e "$tmp/u/forecast.nc" ] \
  && ok || fail "SIGUSR1: exit $rc, $(tail -2 "$tmp/u1.log")"
"$tessera" forecast out="$tmp/u" "${fc[@]}" "${slow[@]}" >"$tmp/u2.log" 2>&1 && grep -q "resuming" "$tmp/u2.log" \
  && ok || fail "resume after SIGUSR1: $(tail -2 "$tmp/u2.log")"

# the same on 4 ranks (DP 2 x SP 2): the resumed state comes back to each
# rank's members and rows (from rank 0's reading, or, with parallel
# NetCDF-4, each rank's own block), and the rerun ends identical to an
# uninterrupted run of the same layout
four=(mpiexec -n 4 "$tessera" forecast "${fc[@]}" "${slow[@]}" parallel.dp=2 parallel.sp=2)
"${four[@]}" out="$tmp/p0" >"$tmp/p0.log" 2>&1 && ok || fail "uninterrupted 4-rank run: $(tail -2 "$tmp/p0.log")"
"${four[@]}" out="$tmp/p" >"$tmp/p1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "lead 1/3" "$tmp/p1.log" 2>/dev/null && break; sleep 0.01; done
kill -USR1 $pid 2>/dev/null
wait $pid
rc=$?
[ $rc = 0 ] && grep -q "stopped after lead" "$tmp/p1.log" && [ -e "$tmp/p/forecast.nc.part" ] \
  && ok || fail "4 ranks, SIGUSR1: exit $rc, $(tail -2 "$tmp/p1.log")"
"${four[@]}" out="$tmp/p" >"$tmp/p2.log" 2>&1 && grep -q "resuming" "$tmp/p2.log" \
  && ok || fail "4 ranks, resume: $(tail -2 "$tmp/p2.log")"

if /usr/bin/python3 - "$tmp" <<'PY'; then ok; else fail "independent reader checks"; fi
import sys
import numpy as np
import netCDF4
import xarray as xr
tmp = sys.argv[1]
def fields(path):
    ds = netCDF4.Dataset(path)
    return {v: np.array(ds[v][:], dtype=np.float64) for v in ("z", "t", "t2m", "u10")}
a, b = fields(f"{tmp}/a/forecast.nc"), fields(f"{tmp}/b/forecast.nc")
for v in a:
    assert np.array_equal(a[v], b[v], equal_nan=True), f"same layout differs in {v}"
# first lead: other layouts within 1e-5 norm-wise relative
for other in ("dp2", "wpy3", "wpx2", "dp2wpx2", "sp2", "dp2sp2", "wpx2sp2", "pp2", "dp2pp2", "wpx2sp2pp2", "th2",
              "mb2", "pp2mb4", "dp2pp2mb2"):
    o = fields(f"{tmp}/{other}/forecast.nc")
    for v in a:
        x, y = a[v][:, :, 0], o[v][:, :, 0]
        m = ~np.isnan(x)
        rel = np.linalg.norm(x[m] - y[m]) / np.linalg.norm(x[m])
        assert rel <= 1e-5, (other, v, rel)
k, k0 = fields(f"{tmp}/k/forecast.nc"), fields(f"{tmp}/k0/forecast.nc")
for v in k:
    assert np.array_equal(k[v], k0[v], equal_nan=True), f"resumed rollout differs in {v}"
u = fields(f"{tmp}/u/forecast.nc")
for v in u:
    assert np.array_equal(u[v], k0[v], equal_nan=True), f"rollout resumed after SIGUSR1 differs in {v}"
p, p0 = fields(f"{tmp}/p/forecast.nc"), fields(f"{tmp}/p0/forecast.nc")
for v in p:
    assert np.array_equal(p[v], p0[v], equal_nan=True), f"4-rank rollout resumed after SIGUSR1 differs in {v}"
ds = xr.open_dataset(f"{tmp}/a/forecast.nc", decode_timedelta=True)
assert ds["z"].dims == ("number", "time", "step", "pressure_level", "latitude", "longitude"), ds["z"].dims
assert ds["t2m"].dims == ("number", "time", "step", "latitude", "longitude")
assert (ds["valid_time"] == ds["time"] + ds["step"]).all()
assert list(ds["step"].values.astype("timedelta64[h]").astype(int)) == [6, 12, 18]
assert ds.sizes["number"] == 4 and ds.sizes["time"] == 2
assert ds.attrs["Conventions"] == "CF-1.8"
assert np.isfinite(ds["t2m"].values).all() and np.isfinite(ds["z"].sel(pressure_level=500).values).all()
assert np.isnan(ds["z"].sel(pressure_level=850).values).all()  # only z500 is forecast
# members differ (the ensemble is not collapsed) and stay near the truth: within
# the truth's range widened by half its width, and the members' spread below
# the truth's own spatial variability (a 6-hour forecast of a briefly trained
# model may be poor, but not wild)
t2m = ds["t2m"].values
truth = netCDF4.Dataset(f"{tmp}/data/cds_sl.nc")["t2m"][...].filled(np.nan)
lo, hi = np.nanmin(truth), np.nanmax(truth)
assert np.std(t2m, axis=0).mean() > 0
assert lo - 0.5 * (hi - lo) <= t2m.min() and t2m.max() <= hi + 0.5 * (hi - lo), (t2m.min(), t2m.max(), lo, hi)
spread, variability = np.std(t2m, axis=0).mean(), np.nanstd(truth, axis=(-2, -1)).mean()
assert spread < variability, (spread, variability)
print("forecast checks passed")
PY

# bad input: one line, non-zero, no forecast file
bad() { local want=$1 dir=$2; shift 2; "$@" >"$tmp/o" 2>"$tmp/e"; local rc=$?
  if [ $rc = "$want" ] && [ "$(grep -c '^tessera: ' "$tmp/e")" = 1 ] && [ ! -e "$dir/forecast.nc" ]; then ok
  else fail "$*: exit $rc (want $want): $(cat "$tmp/e")"; fi; }
bad 2 "$tmp/x1" "$tessera" forecast out="$tmp/x1" "${fc[@]}" forecast.inits=2019-06-01
bad 1 "$tmp/x2" "$tessera" forecast out="$tmp/x2" "${fc[@]}" forecast.checkpoint="$tmp/nothing.h5"
bad 2 "$tmp/x3" "$tessera" forecast out="$tmp/x3" "${fc[@]}" forecast.members=3 parallel.dp=1 forecast.inits=
bad 2 "$tmp/x5" "$tessera" forecast out="$tmp/x5" "${fc[@]}" forecast.micro_batches=3
bad 1 "$tmp/x4" "$tessera" forecast out="$tmp/x4" "${fc[@]}" forecast.checkpoint="$tmp/data/cds_sl.nc"

finish
