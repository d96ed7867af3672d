#!/usr/bin/env bash
# tessera demo demo.size=quick: the whole chain runs and leaves every product
# (data, statistics, checkpoint, forecast, scorecard, plots), each readable.
# usage: test_demo.sh path/to/tessera source-dir
set -u
tessera=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
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
echo "test_demo: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
