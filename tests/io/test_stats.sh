#!/usr/bin/env bash
# tessera stats against an independent numpy computation of the same
# formulas on the same files (/usr/bin/python3 with Debian's netCDF4), on
# data from synth-era5, over all times and over a stats.start/stats.end
# range; 1 rank against 2 ranks; bad input.
# usage: test_stats.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"

if "$tessera" synth-era5 out="$tmp/data" synth.start=2021-03-01 synth.days=20 synth.spinup_days=5 seed=3 \
    >"$tmp/synth.log" 2>&1; then ok; else fail "synth-era5: $(tail -3 "$tmp/synth.log")"; fi

files="$tmp/data/*.nc"
if "$tessera" stats out="$tmp/s1" data.files="$files" stats.residual_hours=6,24 >"$tmp/s1.log" 2>&1; then ok
else fail "stats: $(tail -3 "$tmp/s1.log")"; fi
if mpiexec -n 2 "$tessera" stats out="$tmp/s2" data.files="$files" stats.residual_hours=6,24 parallel.dp=2 \
    >"$tmp/s2.log" 2>&1; then ok; else fail "stats on 2 ranks: $(tail -3 "$tmp/s2.log")"; fi

# stats.start / stats.end: the times in [2021-03-05, 2021-03-15) only
if "$tessera" stats out="$tmp/s3" data.files="$files" stats.residual_hours=6,24 stats.start=2021-03-05 \
    stats.end=2021-03-15 >"$tmp/s3.log" 2>&1; then ok; else fail "stats of a time range: $(tail -3 "$tmp/s3.log")"; fi

if /usr/bin/python3 - "$tmp/data" "$tmp/s1/stats.nc" "$tmp/s2/stats.nc" "$tmp/s3/stats.nc" <<'PY'; then ok; else fail "numpy oracle"; fi
import glob, sys
import numpy as np
import netCDF4

data_dir, s1_path, s2_path, s3_path = sys.argv[1:5]
fields = {}
times = None
for path in sorted(glob.glob(data_dir + "/*.nc")):
    ds = netCDF4.Dataset(path)
    tname = "valid_time" if "valid_time" in ds.variables else "time"
    t = netCDF4.num2date(ds[tname][:], ds[tname].units, only_use_cftime_datetimes=False)
    t = np.array([np.datetime64(x.isoformat()) for x in t]).astype("datetime64[s]").astype(np.int64)
    times = t if times is None else times
    assert np.array_equal(times, t)
    lat = np.array(ds["latitude"][:], dtype=np.float64)
    lev = "pressure_level" if "pressure_level" in ds.variables else ("level" if "level" in ds.variables else None)
    for name, var in ds.variables.items():
        if var.ndim == 4:
            for k, p in enumerate(ds[lev][:]):
                fields[f"{name}{int(p)}"] = np.array(var[:, k], dtype=np.float64)
        elif var.ndim == 3:
            key = "z_surface" if name == "z" else name
            fields[key] = np.array(var[:], dtype=np.float64)

# WeatherBench-2 cell-area weights, computed here from the definition.
order = np.argsort(lat)
ls = lat[order]
mid = (ls[1:] + ls[:-1]) / 2
bounds = np.concatenate([[-90.0], mid, [90.0]])
w_sorted = np.sin(np.deg2rad(bounds[1:])) - np.sin(np.deg2rad(bounds[:-1]))
w = np.empty_like(w_sorted)
w[order] = w_sorted
w = w / w.mean()

def wmean(x):  # over (time, lat, lon)
    return float((x * w[None, :, None]).sum() / (w.sum() * x.shape[0] * x.shape[2]))

s1 = netCDF4.Dataset(s1_path)
s2 = netCDF4.Dataset(s2_path)
names = [str(n).strip() for n in netCDF4.chartostring(np.array(s1["channel_name"][:]))]
nstate = s1.dimensions["state_channel"].size
res_hours = list(s1["residual_hours"][:])
worst = 0.0
for c, name in enumerate(names):
    x = fields[name]
    if name in ("lsm", "z_surface"):
        x = x[:1]  # static: the first time
    m = wmean(x)
    sd = np.sqrt(wmean((x - m) ** 2))
    for got, want in ((s1["mean"][c], m), (s1["std"][c], sd)):
        err = abs(got - want) / max(abs(want), 1e-30)
        worst = max(worst, err)
        assert err < 1e-6, (name, got, want, err)
    if c < nstate:
        for d, h in enumerate(res_hours):
            k = int(h * 3600 // (times[1] - times[0]))
            r = x[k:] - x[:-k]
            rm = wmean(r)
            rs = np.sqrt(wmean((r - rm) ** 2))
            err = abs(s1["residual_std"][d, c] - rs) / rs
            worst = max(worst, err)
            assert err < 1e-5, (name, h, s1["residual_std"][d, c], rs)
# climatology: 20 days lie inside the 61-day window of the days around
# them, so there it is the mean over all times of that hour; far away there
# is no data (NaN).
hours = (times % 86400) // 3600
doy0 = int(np.datetime64(int(times[0]), "s").astype("datetime64[D]").astype(object).timetuple().tm_yday)
clim = s1["climatology"]
for c in range(nstate):
    x = fields[names[c]]
    for hi, h in enumerate(s1["hour"][:]):
        want = x[hours == h].mean(axis=0)
        got = np.array(clim[c, doy0 - 1 + 10, hi], dtype=np.float64)
        err = np.abs(got - want).max() / np.abs(want).max()
        worst = max(worst, err)
        assert err < 1e-5, (names[c], h, err)
        assert np.all(np.isnan(clim[c, (doy0 - 1 + 180) % 366, hi]))
# the time range: the same formulas on the times in [lo, hi), residual pairs
# with both times inside
lo, hi = (int(np.datetime64(d, "s").astype(np.int64)) for d in ("2021-03-05", "2021-03-15"))
sel = (times >= lo) & (times < hi)
s3 = netCDF4.Dataset(s3_path)
assert s3.ntimes == sel.sum(), (s3.ntimes, sel.sum())
for c, name in enumerate(names):
    x = fields[name][:1] if name in ("lsm", "z_surface") else fields[name][sel]
    m = wmean(x)
    sd = np.sqrt(wmean((x - m) ** 2))
    for got, want in ((s3["mean"][c], m), (s3["std"][c], sd)):
        assert abs(got - want) <= 1e-6 * max(abs(want), 1e-30), ("range", name, got, want)
    if c < nstate:
        for d, h in enumerate(res_hours):
            k = int(h * 3600 // (times[1] - times[0]))
            r = x[k:] - x[:-k]
            rs = np.sqrt(wmean((r - wmean(r)) ** 2))
            assert abs(s3["residual_std"][d, c] - rs) <= 1e-5 * rs, ("range", name, h, s3["residual_std"][d, c], rs)
assert abs(s3["mean"][0] - s1["mean"][0]) > 1e-6 * abs(s1["mean"][0])  # the range changed something
# 1 rank and 2 ranks: the same numbers up to the order of the sums
for v in ("mean", "std", "residual_std"):
    a, b = np.array(s1[v][:]), np.array(s2[v][:])
    assert np.allclose(a, b, rtol=1e-10, atol=0), v
print(f"stats match numpy: worst relative difference {worst:.2e}")
PY

# bad input: one line, the right exit code, no statistics file left
"$tessera" stats out="$tmp/bad1" >"$tmp/o" 2>"$tmp/e"
if [ $? = 2 ] && grep -q "data.files is empty" "$tmp/e" && [ ! -e "$tmp/bad1/stats.nc" ]; then ok; else fail "empty data.files"; fi
"$tessera" stats out="$tmp/bad2" data.files="$files" data.variables=z500,w700 >"$tmp/o" 2>"$tmp/e"
if [ $? = 1 ] && [ "$(wc -l <"$tmp/e")" = 1 ] && grep -q "w" "$tmp/e" && [ ! -e "$tmp/bad2/stats.nc" ]; then ok
else fail "missing variable: $(cat "$tmp/e")"; fi
"$tessera" stats out="$tmp/bad3" data.files="$tmp/nothing*.nc" >"$tmp/o" 2>"$tmp/e"
if [ $? != 0 ] && [ "$(wc -l <"$tmp/e")" = 1 ] && [ ! -e "$tmp/bad3/stats.nc" ]; then ok; else fail "no files: $(cat "$tmp/e")"; fi

finish
