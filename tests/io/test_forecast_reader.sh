#!/usr/bin/env bash
# Independent readers of a written forecast file (docs/forecast-format.md):
# xarray and netCDF4 under Debian's /usr/bin/python3, cdo, and the
# WeatherBench-2 recipe.
#
#   bash test_forecast_reader.sh <path/to/tessera> <source dir>
#
# The file comes from the writer's own test program, built next to tessera
# as tests/test_forecast_write: `test_forecast_write OUT.nc` writes the
# sample forecast (3 members, 2 inits, leads 6..24 h, z and t on 850/500 hPa,
# t2m and msl, 8x16 grid, every value from sample_value() in
# tests/io/test_forecast_write.c, recomputed here), and
# `test_forecast_write OUT.nc 2` stops after 2 complete leads, leaving
# OUT.nc.part as a killed forecast would.
set -u

tessera=${1:?usage: test_forecast_reader.sh <path/to/tessera> <source dir>}
writer="$(dirname "$tessera")/tests/test_forecast_write"
py=/usr/bin/python3
. "$(dirname "$0")/../lib.sh"

# Python snippets get the file as argv[1]; numpy's ABI warning from Debian's
# netCDF4 build is noise, not a failure.
pycheck() {
    local name=$1 file=$2 code=$3
    check "$name" "$py" -W ignore -c "$code" "$file"
}

fc="$tmp/forecast.nc"
partial="$tmp/partial.nc"
check "the writer's test program exists ($writer)" test -x "$writer"
check "write the sample forecast" "$writer" "$fc"
check "complete file has its final name, no .part" bash -c "test -f '$fc' && test ! -e '$fc.part'"
check "write a forecast stopped after 2 leads" "$writer" "$partial" 2
check "stopped file exists only as .part" bash -c "test -f '$partial.part' && test ! -e '$partial'"

# The formula of sample_value(), evaluated in float64 in the same order and
# rounded once to float32: the values must match bit for bit.
common='
import sys, numpy as np, xarray as xr, netCDF4
names = ["z", "t", "t2m", "msl"]
def expected(name, nk):
    v = names.index(name)
    m, n, l, k, i, j = np.ix_(np.arange(3), np.arange(2), np.arange(4), np.arange(nk), np.arange(8), np.arange(16))
    x = (1000.0 * v + 100.0 * m + 10.0 * n + l + 0.25 * k + 0.001 * (i * 16 + j)).astype(np.float32)
    return x if nk > 1 else x[:, :, :, 0]
'

pycheck "xarray: dims, sizes and order" "$fc" "$common
ds = xr.open_dataset(sys.argv[1])
assert dict(ds.sizes) == dict(number=3, time=2, step=4, pressure_level=2, latitude=8, longitude=16), ds.sizes
assert ds.z.dims == ('number', 'time', 'step', 'pressure_level', 'latitude', 'longitude'), ds.z.dims
assert ds.t2m.dims == ('number', 'time', 'step', 'latitude', 'longitude'), ds.t2m.dims
assert ds.valid_time.dims == ('time', 'step')
assert 'valid_time' in ds.coords and 'valid_time' in ds.z.coords
assert sorted(ds.data_vars) == sorted(names)
assert all(ds[v].dtype == np.float32 for v in names)
assert (np.diff(ds.latitude) < 0).all() and list(ds.pressure_level.values) == [850.0, 500.0]
"

pycheck "xarray: time decodes, step is a timedelta, valid_time = time + step" "$fc" "$common
ds = xr.open_dataset(sys.argv[1])
assert ds.time.dtype.kind == 'M' and ds.valid_time.dtype.kind == 'M', (ds.time.dtype, ds.valid_time.dtype)
assert ds.step.dtype.kind == 'm', ds.step.dtype
assert list(ds.time.values) == [np.datetime64('2020-01-01T00:00', 'ns'), np.datetime64('2020-01-01T12:00', 'ns')]
assert list(ds.step.values) == [np.timedelta64(h, 'h') for h in (6, 12, 18, 24)]
assert (ds.valid_time == ds.time + ds.step).all()
assert ds.valid_time.values[1, 3] == np.datetime64('2020-01-02T12:00', 'ns')
"

pycheck "attributes: standard names, units, Conventions, coordinates, fill" "$fc" "$common
f = netCDF4.Dataset(sys.argv[1])
sn = {k: f[k].standard_name for k in ('number', 'time', 'step', 'valid_time', 'latitude', 'longitude')}
assert sn == dict(number='realization', time='forecast_reference_time', step='forecast_period',
                  valid_time='time', latitude='latitude', longitude='longitude'), sn
assert f['time'].units == f['valid_time'].units == 'seconds since 1970-01-01 00:00:00'
assert f['time'].calendar == 'proleptic_gregorian' and f['step'].units == 'hours'
assert f['pressure_level'].units == 'hPa' and f['latitude'].units == 'degrees_north'
assert f['longitude'].units == 'degrees_east'
assert f['time'].dtype == np.int64 and f['valid_time'].dtype == np.int64 and f['number'].dtype == np.int32
assert f.Conventions == 'CF-1.8' and f.source.startswith('tessera ') and len(f.history) > 0
units = dict(z='m**2 s**-2', t='K', t2m='K', msl='Pa')
for v in names:
    assert f[v].coordinates == 'valid_time', v
    assert f[v].units == units[v], v
    assert np.isnan(f[v]._FillValue), v
    assert f[v].filters()['zlib'] and f[v].filters()['shuffle'] and f[v].filters()['complevel'] == 1, v
assert f['z'].chunking() == [1, 1, 1, 1, 8, 16] and f['t2m'].chunking() == [1, 1, 1, 8, 16]
assert f['z'].standard_name == 'geopotential' and int(f['z'].GRIB_paramId) == 129
assert 'standard_name' not in f['t2m'].ncattrs() and int(f['t2m'].GRIB_paramId) == 167
assert f.tessera_complete_leads == 4
"

pycheck "values equal the writer's formula, bit for bit" "$fc" "$common
ds = xr.open_dataset(sys.argv[1])
for v in names:
    want = expected(v, 2 if v in ('z', 't') else 1)
    assert np.array_equal(ds[v].values, want), v
"

pycheck "a stopped forecast's .part opens: 2 leads written, the rest NaN" "$partial.part" "$common
ds = xr.open_dataset(sys.argv[1])
assert ds.attrs['tessera_complete_leads'] == 2
for v in names:
    want = expected(v, 2 if v in ('z', 't') else 1)
    assert np.array_equal(ds[v].values[:, :, :2], want[:, :, :2]), v
    assert np.isnan(ds[v].values[:, :, 2:]).all(), v
"

# The WeatherBench-2 recipe of docs/forecast-format.md, then WB2's own
# time conventions (weatherbench2/schema.py apply_time_conventions, by_init).
pycheck "WeatherBench-2 recipe: rename to prediction_timedelta, level, realization" "$fc" "$common
ds = xr.open_dataset(sys.argv[1])
wb = ds.rename(step='prediction_timedelta', pressure_level='level', number='realization')
assert wb.prediction_timedelta.dtype == np.dtype('timedelta64[ns]')
wb = wb.rename(prediction_timedelta='lead_time', time='init_time')
wb.coords['valid_time'] = wb.init_time + wb.lead_time
assert (wb.valid_time == ds.valid_time.values).all()
z500 = wb.z.sel(level=500).sortby('latitude')
assert z500.dims == ('realization', 'init_time', 'lead_time', 'latitude', 'longitude')
assert (np.diff(z500.latitude) > 0).all()
assert np.array_equal(z500.mean('realization').values,
                      expected('z', 2)[:, :, :, 1, ::-1].mean(axis=0, dtype=np.float32))
"

# cdo 2.x reads at most 4-D variables with time first, so no cdo reads the
# 5-D and 6-D ensemble layout (cfgrib's own NetCDF neither). The check: cdo
# reads the file itself if it can, else the one-member, one-init extract of
# docs/forecast-format.md, with valid_time as its time axis.
cdo_reads() {
    local f=$1 extract=$tmp/member0_init0.nc
    if cdo -s sinfo "$f" >"$tmp/cdo.txt" 2>&1; then
        echo "cdo reads the ensemble file directly"
    else
        grep -Eq "dimensional variables are not supported|Time must be the first dimension" "$tmp/cdo.txt" || {
            cat "$tmp/cdo.txt"
            return 1
        }
        "$py" -W ignore - "$f" "$extract" <<'EOF' || return 1
import sys, xarray as xr
ds = xr.open_dataset(sys.argv[1])
one = (ds.isel(number=0, time=0)
         .swap_dims(step="valid_time")
         .drop_vars(["number", "time", "step"])
         .rename(valid_time="time"))
for v in one.data_vars:
    one[v].encoding.pop("coordinates", None)
one.to_netcdf(sys.argv[2])
EOF
        cdo -s sinfo "$extract" >"$tmp/cdo.txt" 2>&1 || { cat "$tmp/cdo.txt"; return 1; }
        f=$extract
    fi
    cat "$tmp/cdo.txt"
    ! grep -q "Warning" "$tmp/cdo.txt" &&
        grep -q "pressure_level : 850 to 500 hPa" "$tmp/cdo.txt" &&
        grep -q "time : 4 steps" "$tmp/cdo.txt" &&
        grep -q "2020-01-01 06:00:00" "$tmp/cdo.txt" &&
        [ "$(cdo -s showname "$f" | tr -s ' ' '\n' | grep -c .)" -eq 4 ] &&
        cdo -s outputtab,value -selname,t2m -seltimestep,1 "$f" | awk 'NR==2 { exit !($1 == 2000.0) }'
}
if command -v cdo >/dev/null 2>&1; then
    check "cdo sinfo reads the forecast (or its per-member extract)" cdo_reads "$fc"
else
    check "cdo is installed" false
fi

finish
