"""Derives the broken inputs of tests/bad from one small valid run.

usage: make_inputs.py VALID BROKEN
VALID holds data/*.nc (synth-era5), run/stats.nc, run/checkpoint.h5 and
run/forecast.nc; every broken file is written under BROKEN. Truncated and
empty files are made by the shell script (head -c); here are the ones that
need a NetCDF or HDF5 library: each is a copy of a valid file with one thing
wrong, so a case's error can only come from that one thing.
"""
import os
import sys

import h5py
import netCDF4
import numpy as np

valid, broken = sys.argv[1], sys.argv[2]
PL = f"{valid}/data/era5_pressure_levels_2020.nc"
SL = f"{valid}/data/era5_single_levels_2020.nc"


def copy_nc(src, dst, drop=(), index=None, dims_of=None, edit=None, fmt="NETCDF4"):
    """Copy src to dst, leaving out the variables in `drop`, taking
    index[dim] (an index array) along each named dimension, giving a variable
    other dimensions (dims_of[var] = new order, data transposed to match) and
    changing data with edit[var](array) -> array."""
    index, dims_of, edit = index or {}, dims_of or {}, edit or {}
    with netCDF4.Dataset(src) as a, netCDF4.Dataset(dst, "w", format=fmt) as b:
        b.setncatts({k: a.getncattr(k) for k in a.ncattrs()})
        for name, d in a.dimensions.items():
            n = len(index[name]) if name in index else len(d)
            b.createDimension(name, None if d.isunlimited() and fmt == "NETCDF4" else n)
        for name, v in a.variables.items():
            if name in drop:
                continue
            dims = dims_of.get(name, v.dimensions)
            fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
            dtype = v.dtype if v.dtype != np.int64 or fmt == "NETCDF4" else np.int32
            w = b.createVariable(name, dtype, dims, fill_value=fill)
            w.setncatts({k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"})
            v.set_auto_maskandscale(False)
            w.set_auto_maskandscale(False)
            data = v[...]
            for axis, dim in enumerate(v.dimensions):
                if dim in index:
                    data = np.take(data, index[dim], axis=axis)
            if dims != v.dimensions:
                data = np.transpose(data, [v.dimensions.index(d) for d in dims])
            if name in edit:
                data = edit[name](np.array(data))
            w[...] = data


def every_other(n):
    return np.arange(0, n, 2)


with netCDF4.Dataset(PL) as d:
    nlat, nlon = len(d.dimensions["latitude"]), len(d.dimensions["longitude"])
    levels = list(d["pressure_level"][:])

# data files: a channel or a level missing, a variable with its dimensions in
# another order, a NaN in a field, the data on a coarser grid (16 x 32)
os.makedirs(f"{broken}/no_t2m", exist_ok=True)
copy_nc(SL, f"{broken}/no_t2m/sl.nc", drop=("t2m",))
os.makedirs(f"{broken}/no_850", exist_ok=True)
copy_nc(PL, f"{broken}/no_850/pl.nc", index={"pressure_level": [levels.index(500), levels.index(700)]})
os.makedirs(f"{broken}/dims", exist_ok=True)
copy_nc(SL, f"{broken}/dims/sl.nc", dims_of={"t2m": ("valid_time", "longitude", "latitude")})


def one_nan(a):
    a = a.astype(np.float32)
    a[3, 5, 7] = np.nan
    return a


os.makedirs(f"{broken}/nan", exist_ok=True)
copy_nc(SL, f"{broken}/nan/sl.nc", edit={"t2m": one_nan})
os.makedirs(f"{broken}/coarse", exist_ok=True)
coarse = {"latitude": every_other(nlat), "longitude": every_other(nlon)}
copy_nc(PL, f"{broken}/coarse/pl.nc", index=coarse)
copy_nc(SL, f"{broken}/coarse/sl.nc", index=coarse)
# a classic (NetCDF-3) file cut inside its record data: netCDF-C itself would
# read the missing records as zeros
copy_nc(SL, f"{broken}/classic_sl.nc", drop=("expver",), fmt="NETCDF3_64BIT_OFFSET")

# forecast file: on the coarse grid, which the truth does not match
copy_nc(f"{valid}/run/forecast.nc", f"{broken}/fc_coarse.nc", index=coarse)
# forecast file without its variables
copy_nc(f"{valid}/run/forecast.nc", f"{broken}/fc_novars.nc", drop=("z", "t", "t2m", "u10"))


# checkpoints: each a copy with one thing changed
def with_config(old, new):
    """A change of the stored configuration JSON (flat, no spaces)."""
    def change(f):
        text = f.attrs["config"]
        assert old in text, old
        f.attrs.modify("config", text.replace(old, new))
    return change


def ckpt(name, change):
    path = f"{broken}/{name}"
    with open(f"{valid}/run/checkpoint.h5", "rb") as a, open(path, "wb") as b:
        b.write(a.read())
    with h5py.File(path, "r+") as f:
        change(f)


ckpt("ck_mesh.h5", lambda f: f.attrs.modify("model_kind", "mesh"))
ckpt("ck_no_format.h5", lambda f: f.attrs.__delitem__("format"))
ckpt("ck_bad_config.h5", lambda f: f.attrs.modify("config", '{"model.dim": 16, "model.heads"'))
ckpt("ck_config_dim32.h5", with_config('"model.dim":16', '"model.dim":32'))
ckpt("ck_config_dim7.h5", with_config('"model.dim":16', '"model.dim":7'))
# a \u escape cut by the end of the text (found by fuzzing: the reader ran past it)
ckpt("ck_config_escape_cut.h5", lambda f: f.attrs.modify("config", '{"model.dim":"\\u1'))


def drop_ema_embed(f):
    del f["ema/embed.weight"]


def reshape_head(f):
    del f["ema/head.proj.weight"]
    f["ema/head.proj.weight"] = np.zeros((5, 16), np.float32)


def drop_stats_channel(f):
    names = [n.decode() if isinstance(n, bytes) else n for n in f["stats/channel_name"][...]]
    keep = [i for i, n in enumerate(names) if n != "t2m"]
    for k in ("channel_name", "channel_units", "mean", "std"):
        data = f[f"stats/{k}"][...][keep]
        dtype = f[f"stats/{k}"].dtype
        del f[f"stats/{k}"]
        f.create_dataset(f"stats/{k}", data=data, dtype=dtype)


def nan_weight(f):
    w = f["ema/embed.weight"]
    a = w[...]
    a[0, 0] = np.nan
    w[...] = a


ckpt("ck_no_ema_embed.h5", drop_ema_embed)
ckpt("ck_head_shape.h5", reshape_head)
ckpt("ck_stats_no_t2m.h5", drop_stats_channel)
ckpt("ck_nan_weight.h5", nan_weight)


# statistics file: t2m renamed, so the file lacks a channel the run needs
def rename_channel(path, old, new):
    with netCDF4.Dataset(path, "r+") as d:
        v = d["channel_name"]
        v.set_auto_chartostring(False)
        names = v[...]
        for i in range(names.shape[0]):
            if b"".join(x for x in names[i] if x).decode() == old:
                row = np.zeros(names.shape[1], "S1")
                row[: len(new)] = list(new.encode())
                v[i] = row


with open(f"{valid}/run/stats.nc", "rb") as a, open(f"{broken}/stats_no_t2m.nc", "wb") as b:
    b.write(a.read())
rename_channel(f"{broken}/stats_no_t2m.nc", "t2m", "t2x")


# mesh files (graph-physics HDF5 + meta JSON), each a copy with one defect
def mesh_copy(name, change):
    import shutil
    shutil.copy(f"{valid}/mesh/synth_mesh.h5", f"{broken}/{name}.h5")
    shutil.copy(f"{valid}/mesh/synth_mesh.json", f"{broken}/{name}.json")
    with h5py.File(f"{broken}/{name}.h5", "r+") as f:
        change(f)


def cell_names_missing_node(f):
    c = f["1/cells"]
    a = c[...]
    a[5, 1] = f["1/mesh_pos"].shape[-2]  # one past the last node
    c[...] = a


def drop_velocity(f):
    del f["0/velocity"]


def nan_velocity(f):
    v = f["1/velocity"]
    a = v[...]
    a[2, 7, 0] = np.nan
    v[...] = a


def unknown_node_type(f):
    t = f["0/node_type"]
    a = t[...]
    a[3] = 12
    t[...] = a


mesh_copy("mesh_cells_bad", cell_names_missing_node)
mesh_copy("mesh_no_velocity", drop_velocity)
mesh_copy("mesh_nan", nan_velocity)
mesh_copy("mesh_bad_type", unknown_node_type)


# headers that declare far more than any machine holds and store nothing
# (chunked, never written: a few kB on disk): refused before any allocation
def declared_huge_mesh():
    import shutil
    shutil.copy(f"{valid}/mesh/synth_mesh.json", f"{broken}/mesh_huge.json")
    with h5py.File(f"{valid}/mesh/synth_mesh.h5", "r") as a, h5py.File(f"{broken}/mesh_huge.h5", "w") as b:
        for name, d in a["0"].items():
            shape = list(d.shape)
            shape[-2] = 1 << 38  # nodes (or cells)
            chunks = tuple(min(n, 1024) for n in shape)
            b.create_dataset(f"0/{name}", shape=tuple(shape), dtype=d.dtype, chunks=chunks)


def declared_huge_lat():
    os.makedirs(f"{broken}/huge_lat", exist_ok=True)
    with netCDF4.Dataset(f"{broken}/huge_lat/sl.nc", "w", format="NETCDF4") as f:
        f.createDimension("latitude", 1 << 37)
        f.createVariable("latitude", "f8", ("latitude",), chunksizes=(1024,))


declared_huge_mesh()
declared_huge_lat()


# mesh meta JSONs the fuzzing campaign found crashes or undefined behaviour in
# (tests/fuzz/regressions/mesh_meta), beside a valid HDF5 file
def mesh_meta(name, edit):
    import json
    import shutil
    shutil.copy(f"{valid}/mesh/synth_mesh.h5", f"{broken}/{name}.h5")
    meta = json.load(open(f"{valid}/mesh/synth_mesh.json"))
    with open(f"{broken}/{name}.json", "w") as out:
        out.write(edit(meta))


def nested(meta):
    import json
    text = json.dumps(meta)
    return text[:-1] + ', "x": ' + "[" * 30000 + "]" * 30000 + "}"


def huge_shape(meta):
    import json
    meta["features"]["velocity"]["shape"][2] = 1e308
    return json.dumps(meta)


def padded(meta):
    import json
    return json.dumps(meta) + " " * (1 << 20)


mesh_meta("mesh_meta_nested", nested)
mesh_meta("mesh_meta_huge_shape", huge_shape)
mesh_meta("mesh_meta_too_large", padded)
