#!/usr/bin/env bash
# tessera demo demo.size=quick: the whole chain runs and leaves every product
# (data, statistics, checkpoint, forecast, scorecard, plots), each readable.
# usage: test_demo.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
if "$tessera" demo out="$tmp/demo" demo.size=quick >"$tmp/log" 2>&1; then ok; else fail "demo: $(tail -3 "$tmp/log")"; fi
for f in data/era5_single_levels_2021.nc data/era5_pressure_levels_2021.nc stats.nc checkpoint.h5 forecast.nc \
         scorecard.csv scorecard.jsonl tessera.jsonl; do
  [ -s "$tmp/demo/$f" ] && ok || fail "missing $f"
done
[ "$(ls "$tmp/demo/plots"/*.png 2>/dev/null | wc -l)" -ge 10 ] && ok || fail "fewer than 10 plots"
if /usr/bin/python3 - "$tmp/demo" <<'PY'; then ok; else fail "products"; fi
import csv, json, sys
import netCDF4
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/scorecard.csv")))
systems = {r["system"] for r in rows}
assert {"tessera", "persistence", "climatology"} <= systems, systems
assert {r["metric"] for r in rows} >= {"rmse", "acc", "crps"}
assert all(r["value"] != "" for r in rows if r["system"] == "tessera" and r["metric"] == "rmse")
ds = netCDF4.Dataset(f"{d}/forecast.nc")
assert ds.dimensions["number"].size == 3 and ds.dimensions["step"].size == 2
events = [json.loads(l)["event"] for l in open(f"{d}/tessera.jsonl")]
assert events[0] == "start" and events[-1] == "end", events[-3:]
for e in ("train_step", "checkpoint", "forecast_lead", "scorecard_written"):
    assert e in events, e
PY
# The scorecard's z500 RMSE of tessera and persistence at every lead,
# recomputed from the files with numpy: the ensemble mean against the truth
# (and the truth at the initial time against it), WB2 cell-area weights,
# the squared error averaged over initial times before the root.
if /usr/bin/python3 - "$tmp/demo" <<'PY'; then ok; else fail "z500 RMSE recomputed from the files"; fi
import csv, glob, sys
import numpy as np, xarray as xr
d = sys.argv[1]
fc = xr.open_dataset(f"{d}/forecast.nc", decode_timedelta=True)
truth = xr.concat([xr.open_dataset(p)["z"].sel(pressure_level=500) for p in sorted(glob.glob(f"{d}/data/era5_pressure_levels_*.nc"))],
                  dim="valid_time").squeeze(drop=True)
lat = fc["latitude"].values
s = np.sort(lat)
bounds = np.concatenate([[-90.0], (s[1:] + s[:-1]) / 2, [90.0]])
area = np.sin(np.deg2rad(bounds[1:])) - np.sin(np.deg2rad(bounds[:-1]))
w = np.empty_like(area)
w[np.argsort(lat)] = area
w /= w.mean()
def wmse(a, b):
    return float(((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2 * w[:, None]).mean())
rows = {(r["system"], int(float(r["lead_hours"]))): float(r["value"]) for r in csv.DictReader(open(f"{d}/scorecard.csv"))
        if r["variable"] == "z" and r["level"] in ("500", "500.0") and r["metric"] == "rmse"}
checked = 0
for step in fc["step"].values:
    hours = int(step / np.timedelta64(1, "h"))
    mse, pmse = [], []
    for t0 in fc["time"].values:
        ens = fc["z"].sel(time=t0, step=step, pressure_level=500).mean("number")
        y = truth.sel(valid_time=t0 + step)
        mse.append(wmse(ens, y))
        pmse.append(wmse(truth.sel(valid_time=t0), y))
    for system, value in (("tessera", np.sqrt(np.mean(mse))), ("persistence", np.sqrt(np.mean(pmse)))):
        got = rows[(system, hours)]
        assert abs(got - value) <= 1e-4 * value, (system, hours, got, value)
        checked += 1
assert checked >= 4, checked
print(f"z500 RMSE: {checked} scorecard rows equal numpy's")
PY
finish
