#!/bin/bash
# tessera synth-era5 end to end: the files it writes, read by independent
# tools (Debian's python3-netCDF4 and cdo), in both layouts and as the
# split instant/accum pair; restart files; determinism for a seed; and one
# clear line (exit 2) for each kind of bad synth.* value.
#
#   bash test_synth_era5.sh <path/to/tessera> <source dir>
set -u
TESSERA=${1:?usage: test_synth_era5.sh <path/to/tessera> <source dir>}
PY=/usr/bin/python3
. "$(dirname "$0")/../lib.sh"
TMP=$tmp
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

run_synth() { # run_synth DIR key=value...
    local dir=$1
    shift
    "$TESSERA" synth-era5 out="$dir" synth.days=3 synth.spinup_days=5 "$@" >"$dir.log" 2>&1 || {
        tail -5 "$dir.log"
        return 1
    }
}

# ---- the independent reader --------------------------------------------------------------
cat >"$TMP/check_era5.py" <<'EOF'
"""Check one synthetic ERA5 file as the CDS delivers them (REFERENCE.md)."""
import math, sys
import numpy as np
import netCDF4

path, layout, kind = sys.argv[1], sys.argv[2], sys.argv[3]  # layout cds|packed, kind pressure|single|instant|accum
start = 1577836800  # 2020-01-01T00
problems = []

def want(cond, msg):
    if not cond:
        problems.append(msg)

ds = netCDF4.Dataset(path)
cds = layout == "cds"
want(ds.getncattr("Conventions") == ("CF-1.7" if cds else "CF-1.6"), "Conventions")
want("synth-era5" in ds.getncattr("history"), "history lacks the resolved configuration")

# coordinates
tname, lname = ("valid_time", "pressure_level") if cds else ("time", "level")
want(ds.dimensions[tname].isunlimited(), tname + " is not unlimited")
t = ds[tname]
if cds:
    want(t.dtype == np.int64, "valid_time is not int64")
    want(t.units == "seconds since 1970-01-01" and t.calendar == "proleptic_gregorian", "valid_time units/calendar")
    secs = t[:].astype(np.int64)
else:
    want(t.dtype == np.int32, "time is not int32")
    want(t.units == "hours since 1900-01-01 00:00:00.0" and t.calendar == "gregorian", "time units/calendar")
    secs = t[:].astype(np.int64) * 3600 - 2208988800
want(list(secs) == [start + 6 * 3600 * i for i in range(12)], "valid times are not 2020-01-01 every 6 h (12 of them): %s" % list(secs)[:3])
lat, lon = ds["latitude"][:], ds["longitude"][:]
want(lat.shape == (32,) and lon.shape == (64,), "grid is not 32 x 64")
want(np.allclose(lat, 87.1875 - 5.625 * np.arange(32)), "latitude is not 87.1875 -> -87.1875 by 5.625")
want(np.allclose(lon, 5.625 * np.arange(64)), "longitude is not 0 -> 354.375 by 5.625")
want(ds["latitude"].units == "degrees_north" and ds["longitude"].units == "degrees_east", "lat/lon units")
if kind == "pressure":
    lev = ds[lname]
    want(list(lev[:]) == [850, 700, 500], "levels are not 850, 700, 500 (decreasing): %s" % list(lev[:]))
    want(lev.units == ("hPa" if cds else "millibars"), "level units")
    want(lev.dtype == (np.float64 if cds else np.int32), "level type")
if cds:
    want("number" in ds.variables and "expver" in ds.variables, "number/expver missing")

# variables: units, long_name, standard_name, GRIB_paramId, storage, ranges
spec = {
    "pressure": {"z": ("m**2 s**-2", "Geopotential", "geopotential", 129),
                 "t": ("K", "Temperature", "air_temperature", 130),
                 "u": ("m s**-1", "U component of wind", "eastward_wind", 131),
                 "v": ("m s**-1", "V component of wind", "northward_wind", 132),
                 "q": ("kg kg**-1", "Specific humidity", "specific_humidity", 133)},
    "single": {"t2m": ("K", "2 metre temperature", "unknown", 167),
               "u10": ("m s**-1", "10 metre U wind component", "unknown", 165),
               "v10": ("m s**-1", "10 metre V wind component", "unknown", 166),
               "msl": ("Pa", "Mean sea level pressure", "air_pressure_at_mean_sea_level", 151),
               "lsm": ("(0 - 1)", "Land-sea mask", "land_binary_mask", 172),
               "z": ("m**2 s**-2", "Geopotential", "geopotential", 129),
               "tisr": ("J m**-2", "TOA incident solar radiation", "unknown", 212)},
}
expected = dict(spec["pressure" if kind == "pressure" else "single"])
if kind == "instant":
    del expected["tisr"]
if kind == "accum":
    expected = {"tisr": spec["single"]["tisr"]}
coords = {"number", "valid_time", "time", "latitude", "longitude", "pressure_level", "level", "expver"}
data_vars = sorted(set(ds.variables) - coords)
want(data_vars == sorted(expected), "variables %s, expected %s" % (data_vars, sorted(expected)))

ranges = {"t2m": (200, 330), "u10": (-60, 60), "v10": (-60, 60), "msl": (93000, 108000), "lsm": (0, 1),
          "z": (0, 60000) if kind != "pressure" else (9000, 61000), "tisr": (0, 5.2e6), "t": (190, 320), "u": (-120, 120), "v": (-120, 120), "q": (0, 0.04)}
level_z = {850: (9000, 18000), 700: (23000, 33000), 500: (45000, 61000)}
level_t = {850: (230, 305), 700: (220, 295), 500: (205, 280)}
for name, (units, long_name, std, pid) in expected.items():
    if name not in ds.variables:
        continue
    v = ds[name]
    dims = (tname, lname, "latitude", "longitude") if kind == "pressure" else (tname, "latitude", "longitude")
    want(v.dimensions == dims, "%s dims %s" % (name, v.dimensions))
    want(v.units == units and v.long_name == long_name, "%s units/long_name: %s / %s" % (name, v.units, v.long_name))
    if cds:
        want(v.standard_name == std, "%s standard_name %s" % (name, v.standard_name))
        want(int(v.GRIB_paramId) == pid, "%s GRIB_paramId" % name)
        want(v.dtype == np.float32, "%s is not float32" % name)
        want(math.isnan(v._FillValue), "%s _FillValue is not NaN" % name)
        f = v.filters()
        want(f.get("zlib") and f.get("shuffle") and f.get("complevel") == 1, "%s not zlib 1 + shuffle" % name)
    else:
        want(v.dtype == np.int16, "%s is not int16" % name)
        want(v._FillValue == -32767 and v.missing_value == -32767, "%s fill/missing value" % name)
        want(hasattr(v, "scale_factor") and hasattr(v, "add_offset"), "%s lacks scale_factor/add_offset" % name)
    a = np.ma.filled(v[:].astype(np.float64), np.nan)
    want(not np.isnan(a).any(), "%s has NaN or missing values" % name)
    lo, hi = ranges[name]
    tol = 0 if cds else (v.scale_factor if hasattr(v, "scale_factor") else 0)
    want(a.min() >= lo - tol and a.max() <= hi + tol, "%s range %g..%g outside %g..%g" % (name, a.min(), a.max(), lo, hi))
    if kind == "pressure" and name in ("z", "t"):
        for k, p in enumerate([850, 700, 500]):
            lo, hi = (level_z if name == "z" else level_t)[p]
            want(a[:, k].min() >= lo and a[:, k].max() <= hi, "%s%d range %g..%g outside %g..%g" % (name, p, a[:, k].min(), a[:, k].max(), lo, hi))
    if name in ("lsm", "z") and kind != "pressure":
        want(np.all(a == a[0]), "%s changes with time (it is static)" % name)
    if name == "tisr":
        want((a == 0).any() and a.max() > 3e6, "tisr has no night or no sunlit hour")
if kind in ("single", "instant") and cds:
    lsm, zs = ds["lsm"][0], ds["z"][0]
    want(lsm.min() == 0 and lsm.max() == 1, "lsm is not both sea (0) and land (1)")
    want(np.all(zs[lsm == 0] == 0), "surface z is not 0 over the sea")
    want(zs.max() > 20000, "no mountains in surface z")
if kind == "pressure":  # hydrostatic: thicker layers where warmer
    z, tt = ds["z"][:].astype(np.float64), ds["t"][:].astype(np.float64)
    thick, tmean = z[:, 2] - z[:, 0], 0.5 * (tt[:, 0] + tt[:, 2])
    want(np.corrcoef(thick.ravel(), tmean.ravel())[0, 1] > 0.99, "850-500 hPa thickness does not follow temperature")
ds.close()
if problems:
    print("%s:" % path)
    for p in problems:
        print("  " + p)
    sys.exit(1)
EOF

cat >"$TMP/same.py" <<'EOF'
"""Two files hold the same data (determinism for a seed)."""
import sys, numpy as np, netCDF4
a, b = netCDF4.Dataset(sys.argv[1]), netCDF4.Dataset(sys.argv[2])
bad = [n for n in a.variables if a[n].dtype != str and not np.array_equal(a[n][:], b[n][:])]
if bad:
    sys.exit("differ: %s" % bad)
EOF

cat >"$TMP/restart.py" <<'EOF'
import sys, netCDF4
ds = netCDF4.Dataset(sys.argv[1])
assert ds.getncattr("format") == "tessera-qg-restart", "format attribute"
assert int(ds.getncattr("time")) == int(sys.argv[2]), "time %s" % ds.getncattr("time")
assert ds["pv"].dimensions == ("channel", "layer", "mode_y", "wavenumber_x", "re_im"), ds["pv"].dimensions
EOF

# ---- CDS layout -------------------------------------------------------------------------------
cds=$TMP/cds
check "synth-era5 runs (CDS layout, restart at 2020-01-02T00)" run_synth "$cds" synth.restart_times=2020-01-02T00
check "pressure-level file: CDS layout, coordinates, attributes, ranges" \
    $PY "$TMP/check_era5.py" "$cds/era5_pressure_levels_2020.nc" cds pressure
check "single-level file: CDS layout, coordinates, attributes, ranges" \
    $PY "$TMP/check_era5.py" "$cds/era5_single_levels_2020.nc" cds single
check "cdo sinfo reads the pressure-level file" cdo -s sinfo "$cds/era5_pressure_levels_2020.nc"
check "cdo sinfo reads the single-level file" cdo -s sinfo "$cds/era5_single_levels_2020.nc"
check "restart file saved at 2020-01-02T00" $PY "$TMP/restart.py" "$cds/restart_2020-01-02T00.nc" 1577923200
check "progress logged with days/s and ETA" grep -q "days/s, ETA" "$cds.log"
check "no partial (.part) file left" bash -c "! ls '$cds' | grep -q '\.part$'"

again=$TMP/again
check "same seed, same data" bash -c "'$TESSERA' synth-era5 out='$again' synth.days=3 synth.spinup_days=5 >/dev/null 2>&1 &&
    $PY '$TMP/same.py' '$cds/era5_pressure_levels_2020.nc' '$again/era5_pressure_levels_2020.nc' &&
    $PY '$TMP/same.py' '$cds/era5_single_levels_2020.nc' '$again/era5_single_levels_2020.nc'"

# ---- packed (older) layout -----------------------------------------------------------------------
packed=$TMP/packed
check "synth-era5 runs (packed layout)" run_synth "$packed" synth.layout=packed
check "pressure-level file: packed layout" $PY "$TMP/check_era5.py" "$packed/era5_pressure_levels_2020.nc" packed pressure
check "single-level file: packed layout" $PY "$TMP/check_era5.py" "$packed/era5_single_levels_2020.nc" packed single
check "cdo sinfo reads the packed pressure-level file" cdo -s sinfo "$packed/era5_pressure_levels_2020.nc"
check "cdo sinfo reads the packed single-level file" cdo -s sinfo "$packed/era5_single_levels_2020.nc"

# ---- instant/accum pair ----------------------------------------------------------------------------
split=$TMP/split
pair=$split/era5_single_levels_2020
check "synth-era5 runs (split_accum)" run_synth "$split" synth.split_accum=true
check "instant file: no tisr" $PY "$TMP/check_era5.py" "$pair/data_stream-oper_stepType-instant.nc" cds instant
check "accum file: tisr only" $PY "$TMP/check_era5.py" "$pair/data_stream-oper_stepType-accum.nc" cds accum
check "cdo sinfo reads the instant file" cdo -s sinfo "$pair/data_stream-oper_stepType-instant.nc"
check "cdo sinfo reads the accum file" cdo -s sinfo "$pair/data_stream-oper_stepType-accum.nc"

# ---- bad configuration: exit 2, one line naming the key ---------------------------------------------
bad_config() { # bad_config KEY key=value...
    local key=$1
    shift
    "$TESSERA" synth-era5 out="$TMP/bad" "$@" >"$TMP/bad.out" 2>"$TMP/bad.err"
    local rc=$?
    [ $rc -eq 2 ] || { echo "exit $rc, expected 2"; cat "$TMP/bad.err"; return 1; }
    [ "$(wc -l <"$TMP/bad.err")" -eq 1 ] || { echo "stderr is not one line:"; cat "$TMP/bad.err"; return 1; }
    grep -q "$key" "$TMP/bad.err" || { echo "the line does not name $key:"; cat "$TMP/bad.err"; return 1; }
    ! ls "$TMP/bad" 2>/dev/null | grep -q '\.nc' || { echo "a file was written"; return 1; }
}
check "bad start date -> exit 2 naming synth.start" bad_config synth.start synth.start=2020-02-30
check "start that is no date -> exit 2 naming synth.start" bad_config synth.start synth.start=yesterday
check "step_hours not dividing 24 -> exit 2 naming synth.step_hours" bad_config synth.step_hours synth.step_hours=5
check "level below 100 hPa -> exit 2 naming synth.levels" bad_config synth.levels synth.levels=500,50
check "level above 1000 hPa -> exit 2 naming synth.levels" bad_config synth.levels synth.levels=1050
check "level that is no number -> exit 2 naming synth.levels" bad_config synth.levels synth.levels=500,abc
check "restart time outside the run -> exit 2 naming synth.restart_times" \
    bad_config synth.restart_times synth.restart_times=2030-01-01T00
check "restart time that is no time -> exit 2 naming synth.restart_times" \
    bad_config synth.restart_times synth.restart_times=2020-01-02T07:30

finish
