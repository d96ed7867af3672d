#!/usr/bin/env bash
# forecast.files=per_member: one CF file per initial time and member.
# - the files hold exactly the ensemble file's fields (python3-netCDF4), with
#   CF coordinates xarray decodes to the valid times;
# - cdo reads them: `cdo sinfo` lists every variable and lead, and
#   `cdo fldmean` equals numpy's mean weighted by cdo's own cell areas;
# - `tessera score` reads the set as one ensemble: the scorecard equals the
#   ensemble file's, and `tessera plot` maps it;
# - resumable file by file: deleted member files are written again, equal,
#   and complete ones are left alone; a rerun with every file complete does
#   nothing; an incomplete set is refused;
# - on 2 ranks (DP 2) each rank writes its share, equal to DP 2's ensemble.
# usage: test_forecast_files.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
py=/usr/bin/python3

tiny_swin_run "$tessera" "$tmp" && ok || { fail "tiny run"; finish; exit 1; }
fc=(forecast.checkpoint="$tmp/run/checkpoint.h5" "${tiny_data[@]}" forecast.inits=2020-01-01,2020-01-01T06
    forecast.members=4 forecast.leads=2 forecast.levels=4 seed=5)

"$tessera" forecast out="$tmp/e" "${fc[@]}" >"$tmp/e.log" 2>&1 && ok || fail "ensemble forecast: $(tail -2 "$tmp/e.log")"
"$tessera" forecast out="$tmp/m" "${fc[@]}" forecast.files=per_member >"$tmp/m.log" 2>&1 && ok \
  || fail "per-member forecast: $(tail -2 "$tmp/m.log")"
grep -q "8 member files written, 0 already complete" "$tmp/m.log" && ok \
  || fail "the log does not report 8 member files: $(grep -m1 'member files' "$tmp/m.log")"
[ ! -e "$tmp/m/forecast.nc" ] && [ -z "$(ls "$tmp/m" | grep '\.part')" ] && ok \
  || fail "after the split the ensemble file and no .part must be gone: $(ls "$tmp/m")"

# the fields, coordinates and attributes, against the ensemble file
check "member files equal the ensemble file" $py - "$tmp/e/forecast.nc" "$tmp/m" <<'PY'
import glob, sys
import numpy as np, netCDF4, xarray as xr
ens = netCDF4.Dataset(sys.argv[1])
files = sorted(glob.glob(sys.argv[2] + "/forecast-*-m*.nc"))
inits = ens["time"][:].astype("int64")
steps = ens["step"][:]
names = [f"{sys.argv[2]}/forecast-{np.datetime64(int(t), 's').astype('datetime64[h]').item():%Y%m%dT%H}-m{m:02d}.nc"
         for t in inits for m in range(ens.dimensions["number"].size)]
assert files == sorted(names), (files, names)
data_vars = [v for v in ens.variables if ens[v].dimensions[:3] == ("number", "time", "step")]
assert len(data_vars) >= 3, data_vars
for i, t in enumerate(inits):
    for m in range(ens.dimensions["number"].size):
        path = names[i * ens.dimensions["number"].size + m]
        with netCDF4.Dataset(path) as f:
            assert f.Conventions == "CF-1.8"
            assert int(f["realization"][...]) == m
            assert float(f["forecast_reference_time"][...]) == float(t)
            assert np.array_equal(f["forecast_period"][:], steps)
            assert np.array_equal(f["time"][:], steps)
            assert f["time"].units.startswith("hours since ")
            for c in ("latitude", "longitude") + (("pressure_level",) if "pressure_level" in ens.variables else ()):
                assert np.array_equal(f[c][:], ens[c][:]), c
            for v in data_vars:
                a, b = f[v][:], ens[v][m, i]
                assert a.shape == b.shape and np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True), (path, v)
                for att in ("units", "long_name", "GRIB_paramId"):
                    if att in ens[v].ncattrs():
                        assert f[v].getncattr(att) == ens[v].getncattr(att), (v, att)
        x = xr.open_dataset(path)
        want = np.datetime64(int(t), "s") + (steps * 3600).astype("timedelta64[s]")
        assert np.array_equal(x["time"].values.astype("datetime64[s]"), want), (x["time"].values, want)
print(len(files), "files,", len(data_vars), "variables each")
PY

# cdo: sinfo, and fldmean against numpy with cdo's own cell areas
one=$(ls "$tmp/m"/forecast-20200101T06-m03.nc)
check "cdo sinfo, showname, ntime: no warning, every variable and lead" bash -c "cdo -s sinfo '$one' > '$tmp/sinfo.txt' 2>'$tmp/sinfo.err' && [ ! -s '$tmp/sinfo.err' ] && grep -q 'time : 2 steps' '$tmp/sinfo.txt' && [ \"\$(cdo -s showname '$one')\" = ' z t t2m u10' ] && [ \"\$(cdo -s ntime '$one')\" = 2 ]"
check "cdo fldmean" bash -c "cdo -s -outputtab,value -fldmean -selname,t2m '$one' > '$tmp/fldmean.txt' && cdo -s gridarea '$one' '$tmp/area.nc'"
check "cdo fldmean equals numpy" $py - "$one" "$tmp/fldmean.txt" "$tmp/area.nc" <<'PY'
import sys
import numpy as np, netCDF4
x = netCDF4.Dataset(sys.argv[1])["t2m"][:].astype("f8")
area = netCDF4.Dataset(sys.argv[3])["cell_area"][:].astype("f8")
got = np.array([float(line) for line in open(sys.argv[2]) if line.strip() and not line.startswith("#")])
want = (x * area).sum(axis=(1, 2)) / area.sum()
assert got.shape == want.shape, (got, want)
assert np.allclose(got, want, rtol=1e-6, atol=0), (got, want)
print("fldmean", got)
PY

# score reads the set as one ensemble: the same scorecard as the ensemble file's
score=(data.stats="$tmp/run/stats.nc" "${tiny_data[@]}" score.bootstrap=0)
"$tessera" score out="$tmp/e" "${score[@]}" >"$tmp/se.log" 2>&1 && ok || fail "score the ensemble file: $(tail -2 "$tmp/se.log")"
"$tessera" score out="$tmp/m" "${score[@]}" >"$tmp/sm.log" 2>&1 && ok || fail "score the member files: $(tail -2 "$tmp/sm.log")"
cmp -s "$tmp/e/scorecard.csv" "$tmp/m/scorecard.csv" && ok || fail "the scorecards differ: $(diff "$tmp/e/scorecard.csv" "$tmp/m/scorecard.csv" | head -4)"

# plot maps the set too
"$tessera" plot out="$tmp/m" "${score[@]}" >"$tmp/pm.log" 2>&1 && ls "$tmp/m/plots"/map_* >/dev/null 2>&1 && ok \
  || fail "plot of the member files: $(tail -2 "$tmp/pm.log")"

# resumable file by file
mkdir -p "$tmp/keep" && cp -p "$tmp/m"/forecast-*.nc "$tmp/keep/"
rm "$tmp/m/forecast-20200101T00-m01.nc" "$tmp/m/forecast-20200101T06-m02.nc"
sleep 1
"$tessera" forecast out="$tmp/m" "${fc[@]}" forecast.files=per_member >"$tmp/m2.log" 2>&1 && ok \
  || fail "rerun after deleting two member files: $(tail -2 "$tmp/m2.log")"
grep -q "2 member files written, 6 already complete" "$tmp/m2.log" && ok \
  || fail "the rerun does not report 2 written, 6 kept: $(grep -m1 'member files' "$tmp/m2.log")"
check "rewritten files equal, the others untouched" $py - "$tmp/m" "$tmp/keep" <<'PY'
import glob, os, sys
import numpy as np, netCDF4
for path in sorted(glob.glob(sys.argv[2] + "/forecast-*.nc")):
    new = sys.argv[1] + "/" + os.path.basename(path)
    rewritten = os.path.basename(path) in ("forecast-20200101T00-m01.nc", "forecast-20200101T06-m02.nc")
    assert (os.stat(new).st_mtime != os.stat(path).st_mtime) == rewritten, new
    with netCDF4.Dataset(path) as a, netCDF4.Dataset(new) as b:
        for v in a.variables:
            assert np.array_equal(np.asarray(a[v][:]), np.asarray(b[v][:]), equal_nan=True), (new, v)
PY
"$tessera" forecast out="$tmp/m" "${fc[@]}" forecast.files=per_member >"$tmp/m3.log" 2>&1 && ok || fail "rerun when complete"
grep -q "every member file of .* is already complete" "$tmp/m3.log" && ok || fail "a complete set must not be redone: $(tail -2 "$tmp/m3.log")"

# an incomplete set is refused with one line, not scored as a smaller ensemble
mkdir -p "$tmp/x" && cp "$tmp/m"/forecast-*.nc "$tmp/x/" && rm "$tmp/x/forecast-20200101T06-m03.nc"
"$tessera" score out="$tmp/x" "${score[@]}" >"$tmp/x.log" 2>"$tmp/x.err"
rc=$?
[ $rc = 1 ] && [ "$(grep -c 'tessera: error' "$tmp/x.err")" = 1 ] && grep -q "7 member files for 2 initial times x 4 members" "$tmp/x.err" \
  && [ ! -e "$tmp/x/scorecard.csv" ] && ok || fail "an incomplete set: exit $rc, $(grep 'error' "$tmp/x.err")"

# two ranks, each its share of the files
mpiexec -n 2 "$tessera" forecast out="$tmp/dp2e" "${fc[@]}" parallel.dp=2 >"$tmp/dp2e.log" 2>&1 && ok \
  || fail "dp2 ensemble: $(tail -2 "$tmp/dp2e.log")"
mpiexec -n 2 "$tessera" forecast out="$tmp/dp2m" "${fc[@]}" parallel.dp=2 forecast.files=per_member >"$tmp/dp2m.log" 2>&1 && ok \
  || fail "dp2 per member: $(tail -2 "$tmp/dp2m.log")"
check "dp2 member files equal dp2's ensemble file" $py - "$tmp/dp2e/forecast.nc" "$tmp/dp2m" <<'PY'
import glob, sys
import numpy as np, netCDF4
ens = netCDF4.Dataset(sys.argv[1])
files = sorted(glob.glob(sys.argv[2] + "/forecast-*-m*.nc"))
assert len(files) == 8, files
for path in files:
    with netCDF4.Dataset(path) as f:
        m = int(f["realization"][...])
        i = list(ens["time"][:]).index(int(f["forecast_reference_time"][...]))
        for v in ("z", "t2m"):
            if v in f.variables:
                assert np.array_equal(np.asarray(f[v][:]), np.asarray(ens[v][m, i]), equal_nan=True), (path, v)
PY

finish 22
