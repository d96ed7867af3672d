#!/usr/bin/env bash
# Independent readers of the ERA5-format files io/era5_write.c writes
# (docs/era5.md): netCDF4 and xarray under Debian's /usr/bin/python3, and cdo.
#
#   bash test_era5_reader.sh <path/to/tessera> <source dir>
#
# The files come from the suite's own program, built next to tessera as
# tests/test_era5: `test_era5 --write DIR` writes cds_sl.nc, cds_pl.nc
# (2024+ layout) and packed_sl.nc, packed_pl.nc (older int16 layout) on a
# 15-degree grid (13 x 24, latitudes 90..-90, longitudes 0..345), 4 times
# 6 hours apart from 2020-01-01, every value from field_value() in
# tests/io/test_era5.c, recomputed here.
set -u

tessera=${1:?usage: test_era5_reader.sh <path/to/tessera> <source dir>}
writer="$(dirname "$tessera")/tests/test_era5"
py=/usr/bin/python3
. "$(dirname "$0")/../lib.sh"

if [ ! -x "$writer" ]; then
    fail "writer: $writer is not built"
    finish
    exit
fi
check "write the sample files" "$writer" --write "$tmp"

# The analytic field and the packing ranges of tests/io/test_era5.c.
cat >"$tmp/common.py" <<'EOF'
import math, sys, warnings
warnings.filterwarnings("ignore")  # numpy ABI notes from Debian's netCDF4 build
import numpy as np

T0 = 1577836800  # 2020-01-01T00:00:00Z
DT = 21600
VARS = {  # name, on levels: (base, amp, units, standard_name, GRIB_paramId)
    ("t2m", 0): (280, 20, "K", "air_temperature", 167),
    ("msl", 0): (101000, 2000, "Pa", "air_pressure_at_mean_sea_level", 151),
    ("z", 0): (5000, 4000, "m**2 s**-2", "geopotential", 129),
    ("z", 1): (50000, 5000, "m**2 s**-2", "geopotential", 129),
    ("t", 1): (250, 30, "K", "air_temperature", 130),
    ("q", 1): (0.005, 0.004, "kg kg**-1", "specific_humidity", 133),
}
LAT = np.array([90.0 - 15 * i for i in range(13)])
LON = np.array([15.0 * j for j in range(24)])
LEV = [850.0, 700.0, 500.0]

def value(name, lev, lat, lon, k):
    base, amp = VARS[(name, 1 if lev else 0)][:2]
    r = math.radians
    s = 0.5 * math.sin(r(lat)) + 0.3 * math.cos(2 * r(lat)) + 0.3 * math.cos(r(lon)) + 0.2 * math.sin(2 * r(lon))
    return base + amp * (s + 0.01 * k + 0.001 * lev)

def step(name, lev):  # int16 packing step: (max - min) / (2^16 - 2)
    base, amp = VARS[(name, 1 if lev else 0)][:2]
    return 3.9 * amp / 65534.0

def close(got, want, tol, what):
    assert abs(got - want) <= tol, f"{what}: {got!r}, want {want!r} within {tol:g}"

# a few points: (time index, row, column), corners and inside
POINTS = [(0, 0, 0), (1, 3, 5), (2, 12, 23), (3, 7, 13)]
EOF

# 2024+ layout through netCDF4: dims, types, attributes, compression, values.
cat >"$tmp/cds_netcdf4.py" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from common import *
import netCDF4
d = sys.argv[1]
for fname, levels in (("cds_sl.nc", False), ("cds_pl.nc", True)):
    ds = netCDF4.Dataset(f"{d}/{fname}")
    assert ds.file_format == "NETCDF4", ds.file_format
    want_dims = ["valid_time"] + (["pressure_level"] if levels else []) + ["latitude", "longitude"]
    assert list(ds.dimensions) == want_dims, list(ds.dimensions)
    assert ds.dimensions["valid_time"].size == 4
    assert ds.Conventions == "CF-1.7"
    assert "synthetic" in ds.source and "not ECMWF data" in ds.source, ds.source
    assert "institution" not in ds.ncattrs()
    assert ds.history == "tessera test_era5"
    vt = ds["valid_time"]
    assert vt.dtype == np.int64 and vt.units == "seconds since 1970-01-01" and vt.calendar == "proleptic_gregorian"
    assert list(vt[:]) == [T0 + k * DT for k in range(4)], vt[:]
    lat, lon = ds["latitude"], ds["longitude"]
    assert lat.dtype == np.float64 and lon.dtype == np.float64
    assert lat.units == "degrees_north" and lon.units == "degrees_east"
    assert np.array_equal(lat[:], LAT) and np.array_equal(lon[:], LON)
    assert lat.stored_direction == "decreasing"
    assert ds["number"].dtype == np.int64 and ds["number"].shape == () and int(ds["number"][...]) == 0
    assert list(ds["expver"][:]) == ["0001"] * 4, ds["expver"][:]
    if levels:
        pl = ds["pressure_level"]
        assert pl.dtype == np.float64 and pl.units == "hPa" and list(pl[:]) == LEV
    names = ["z", "t", "u", "q"] if levels else ["t2m", "u10", "v10", "msl", "lsm", "z"]
    for name in names:
        v = ds[name]
        assert v.dimensions == tuple(want_dims), (name, v.dimensions)
        assert v.dtype == np.float32, (name, v.dtype)
        assert math.isnan(v._FillValue), name
        f = v.filters()
        assert f["zlib"] and f["complevel"] == 1 and f["shuffle"], (name, f)
        assert v.chunking() == [1] + ([1] if levels else []) + [13, 24], (name, v.chunking())
        key = (name, 1 if levels else 0)
        if key in VARS:
            base, amp, units, std, pid = VARS[key]
            assert v.units == units and v.standard_name == std and int(v.GRIB_paramId) == pid, name
            for k, i, j in POINTS:
                for li, lev in enumerate(LEV if levels else [0.0]):
                    got = float(v[k, li, i, j] if levels else v[k, i, j])
                    want = value(name, lev, LAT[i], LON[j], k)
                    close(got, want, 1.2e-7 * abs(want), f"{fname} {name}[{k},{lev},{i},{j}]")
    ds.close()
print("cds layout: netCDF4 checks passed")
EOF

# Older packed layout through netCDF4: raw int16, packing attributes, and
# values unpacked within half a packing step.
cat >"$tmp/packed_netcdf4.py" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from common import *
import netCDF4
d = sys.argv[1]
HOURS_2020 = (T0 + 2208988800) // 3600  # hours from 1900-01-01 to 2020-01-01
for fname, levels in (("packed_sl.nc", False), ("packed_pl.nc", True)):
    ds = netCDF4.Dataset(f"{d}/{fname}")
    assert ds.file_format == "NETCDF3_64BIT_OFFSET", ds.file_format
    want_dims = ["longitude", "latitude"] + (["level"] if levels else []) + ["time"]
    assert list(ds.dimensions) == want_dims, list(ds.dimensions)
    assert ds.dimensions["time"].isunlimited() and ds.dimensions["time"].size == 4
    assert ds.Conventions == "CF-1.6" and "synthetic" in ds.source
    tm = ds["time"]
    assert tm.dtype == np.int32 and tm.units == "hours since 1900-01-01 00:00:00.0" and tm.calendar == "gregorian"
    assert list(tm[:]) == [HOURS_2020 + 6 * k for k in range(4)], tm[:]
    assert ds["latitude"].dtype == np.float32 and ds["longitude"].dtype == np.float32
    assert np.array_equal(ds["latitude"][:], LAT) and np.array_equal(ds["longitude"][:], LON)
    if levels:
        lv = ds["level"]
        assert lv.dtype == np.int32 and lv.units == "millibars" and list(lv[:]) == LEV
    for name in (["z", "t", "q"] if levels else ["t2m", "msl", "z"]):
        v = ds[name]
        dims = ("time",) + (("level",) if levels else ()) + ("latitude", "longitude")
        assert v.dimensions == dims, (name, v.dimensions)
        assert v.dtype == np.int16, (name, v.dtype)
        assert v._FillValue == -32767 and v.missing_value == -32767, name
        base, amp, units, std, pid = VARS[(name, 1 if levels else 0)]
        lo, hi = base - 1.4 * amp, base + 2.5 * amp
        close(v.scale_factor, (hi - lo) / 65534.0, 1e-12 * amp, f"{name} scale_factor")
        close(v.add_offset, (hi + lo) / 2, 1e-9 * abs(base + amp), f"{name} add_offset")
        assert v.units == units and v.standard_name == std, name
        for k, i, j in POINTS:
            for li, lev in enumerate(LEV if levels else [0.0]):
                got = float(v[k, li, i, j] if levels else v[k, i, j])  # unpacked by netCDF4
                want = value(name, lev, LAT[i], LON[j], k)
                close(got, want, 0.5 * step(name, lev) * (1 + 1e-6) + 1e-7 * abs(want), f"{fname} {name}[{k},{lev},{i},{j}]")
    ds.close()
print("packed layout: netCDF4 checks passed")
EOF

# xarray as a user opens them: decoded times, coordinates, selection by label.
cat >"$tmp/xarray_open.py" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1]); from common import *
import xarray as xr
d = sys.argv[1]
times = np.array([np.datetime64("2020-01-01T00:00") + np.timedelta64(6 * k, "h") for k in range(4)])
for layout, tname, lname in (("cds", "valid_time", "pressure_level"), ("packed", "time", "level")):
    sl = xr.open_dataset(f"{d}/{layout}_sl.nc")
    pl = xr.open_dataset(f"{d}/{layout}_pl.nc")
    assert np.array_equal(sl[tname].values, times.astype(sl[tname].dtype)), sl[tname].values
    assert sl.t2m.dims == (tname, "latitude", "longitude"), sl.t2m.dims
    assert pl.t.dims == (tname, lname, "latitude", "longitude"), pl.t.dims
    assert bool((np.diff(sl.latitude.values) < 0).all()) and bool((np.diff(sl.longitude.values) > 0).all())
    if layout == "cds":
        assert "number" in sl.coords and "expver" in sl.coords, list(sl.coords)
    tol = 0.5 * step("t", 850) * (1 + 1e-6) + 1e-4 if layout == "packed" else 1e-4
    got = float(pl.t.sel({tname: times[2], lname: 850}).sel(latitude=45, longitude=90))
    close(got, value("t", 850, 45, 90, 2), tol, f"{layout} t850 at 45N 90E")
    got = float(sl.t2m.sel({tname: times[3]}).sel(latitude=-60, longitude=195))
    tol = 0.5 * step("t2m", 0) * (1 + 1e-6) + 1e-4 if layout == "packed" else 1e-4
    close(got, value("t2m", 0, -60, 195, 3), tol, f"{layout} t2m at 60S 195E")
    assert sl.t2m.attrs["units"] == "K" and pl.z.attrs["standard_name"] == "geopotential"
    sl.close(), pl.close()
print("xarray checks passed")
EOF

check "2024+ layout read by netCDF4" "$py" "$tmp/cds_netcdf4.py" "$tmp"
check "packed layout read by netCDF4" "$py" "$tmp/packed_netcdf4.py" "$tmp"
check "both layouts read by xarray" "$py" "$tmp/xarray_open.py" "$tmp"

# Longitudes as users' files have them: xarray's common idiom for -180..180
# longitudes (assign_coords without sortby: 0..165 then -180..-15), and the
# same file stored decreasing. tessera stats of each must equal the stats of
# the sorted files exactly.
cat >"$tmp/reorder.py" <<'EOF'
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, xarray as xr
src, dst, how = sys.argv[1:4]
ds = xr.open_dataset(src, decode_times=False, mask_and_scale=False)
if how == "xarray":
    ds = ds.assign_coords(longitude=((ds.longitude + 180) % 360) - 180)
    assert list(ds.longitude.values[:2]) == [0, 15] and ds.longitude.values[12] == -180
else:
    ds = ds.isel(longitude=slice(None, None, -1))
ds.to_netcdf(dst)
EOF
cat >"$tmp/stats_equal.py" <<'EOF'
import sys, warnings
warnings.filterwarnings("ignore")
import numpy as np, netCDF4
a, b = netCDF4.Dataset(sys.argv[1]), netCDF4.Dataset(sys.argv[2])
for v in b.variables:
    x, y = np.array(a[v][:]), np.array(b[v][:])
    assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), v
print("statistics equal over", len(b.variables), "variables")
EOF
stats_equal() {
    local how=$1
    mkdir -p "$tmp/$how"
    "$py" "$tmp/reorder.py" "$tmp/cds_sl.nc" "$tmp/$how/sl.nc" "$how" &&
        "$py" "$tmp/reorder.py" "$tmp/cds_pl.nc" "$tmp/$how/pl.nc" "$how" &&
        "$tessera" stats out="$tmp/$how" data.files="$tmp/$how/*.nc" data.variables=z500,t850,t2m data.forcings=lsm stats.residual_hours=6 >/dev/null &&
        "$tessera" stats out="$tmp/sorted" data.files="$tmp/cds_*.nc" data.variables=z500,t850,t2m data.forcings=lsm stats.residual_hours=6 >/dev/null &&
        "$py" "$tmp/stats_equal.py" "$tmp/$how/stats.nc" "$tmp/sorted/stats.nc"
}
check "stats of xarray-reordered longitudes equal the sorted file's" stats_equal xarray
check "stats of decreasing longitudes equal the sorted file's" stats_equal reversed

# cdo sinfo: the grid, levels, 4 time steps and the stored type.
cdo_sinfo() {
    local file=$1 dtype=$2 vertical=$3
    cdo -s sinfo "$file" >"$tmp/sinfo" 2>"$tmp/sinfo.err" || { cat "$tmp/sinfo.err"; return 1; }
    cat "$tmp/sinfo"
    grep -q "points=312 (24x13)" "$tmp/sinfo" &&
        grep -q "longitude : 0 to 345 by 15 degrees_east  circular" "$tmp/sinfo" &&
        grep -q "latitude : 90 to -90 by -15 degrees_north" "$tmp/sinfo" &&
        grep -q ": 4 steps" "$tmp/sinfo" &&
        grep -q "2020-01-01 00:00:00  2020-01-01 06:00:00  2020-01-01 12:00:00  2020-01-01 18:00:00" "$tmp/sinfo" &&
        grep -q " $dtype" "$tmp/sinfo" &&
        grep -Eq "$vertical" "$tmp/sinfo"
}
check "cdo sinfo cds_sl.nc" cdo_sinfo "$tmp/cds_sl.nc" F32z "surface"
check "cdo sinfo cds_pl.nc" cdo_sinfo "$tmp/cds_pl.nc" F32z "pressure_level : 850 to 500 hPa"
check "cdo sinfo packed_sl.nc" cdo_sinfo "$tmp/packed_sl.nc" I16 "surface"
check "cdo sinfo packed_pl.nc" cdo_sinfo "$tmp/packed_pl.nc" I16 "level : 850 to 500 millibars"

finish
