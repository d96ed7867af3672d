#!/usr/bin/env bash
# The UGRID-1.0 mesh rollout files, read by independent readers
# (python3-netCDF4 and xarray): topology attributes as UGRID-1.0 states
# them, connectivity in range, coordinates and every field equal to the
# formula tests/io/test_ugrid_write.c writes.
# usage: test_ugrid.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
if "$(dirname "$tessera")/tests/test_ugrid_write" "$tmp"; then ok; else fail "cannot write the sample files"; finish; exit; fi
if /usr/bin/python3 - "$tmp" <<'PY'; then ok; else fail "the UGRID files, read by netCDF4 and xarray"; fi
import sys
import numpy as np
import netCDF4
import xarray as xr
tmp = sys.argv[1]

def formula(v, s, x, n):
    return ((v + 1) * np.sin(x * 3.0 + 0.7 * s) + 0.25 * n).astype(np.float32)

for name, dim in (("tri", 2), ("tet", 3)):
    ds = netCDF4.Dataset(f"{tmp}/{name}.nc")
    assert ds.Conventions == "CF-1.8 UGRID-1.0", ds.Conventions
    mesh = "mesh2d" if dim == 2 else "mesh3d"
    topo = ds[mesh]
    assert topo.cf_role == "mesh_topology" and topo.topology_dimension == dim
    axes = "xyz"[:dim]
    assert topo.node_coordinates.split() == [f"{mesh}_node_{a}" for a in axes]
    conn_att = "face_node_connectivity" if dim == 2 else "volume_node_connectivity"
    conn = ds[getattr(topo, conn_att)]
    assert conn.cf_role == conn_att and conn.start_index == 0
    cells = conn[:]
    n = ds.dimensions[f"nM{mesh[1:]}_node"].size
    assert cells.shape[1] == dim + 1 and cells.min() >= 0 and cells.max() < n
    x = ds[f"{mesh}_node_x"][:]
    if dim == 2:
        # the lattice: x = 0.1 i, y = 0.05 j, and every triangle has positive area
        i, j = np.arange(n) % 6, np.arange(n) // 6
        assert np.allclose(x, 0.1 * i) and np.allclose(ds[f"{mesh}_node_y"][:], 0.05 * j)
        y = ds[f"{mesh}_node_y"][:]
        p = np.stack([x, y], 1)[cells]
        area = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        assert (np.abs(area) > 0).all()
        assert np.isclose(np.abs(area).sum() / 2, 0.5 * 0.15)  # the triangles tile the 0.5 x 0.15 rectangle
        types = ds["node_type"][:]
        assert ds["node_type"].location == "node" and set(np.unique(types)) == {0, 4, 5, 6}
    else:
        # five tetrahedra fill the unit cube: their volumes sum to 1
        p = np.stack([ds[f"{mesh}_node_{a}"][:] for a in axes], 1)[cells]
        vol = np.abs(np.einsum("ij,ij->i", p[:, 1] - p[:, 0], np.cross(p[:, 2] - p[:, 0], p[:, 3] - p[:, 0]))) / 6
        assert np.isclose(vol.sum(), 1.0), vol.sum()
        assert ds[topo.volume_shape_type][:].tolist() == [0] * 5
    for v, var in enumerate(("velocity_x", "pressure")):
        f = ds[var]
        assert f.mesh == mesh and f.location == "node" and f.dimensions == ("time", f"nM{mesh[1:]}_node")
        data = f[:]
        for s in range(3):
            assert np.array_equal(data[s], formula(v, s, np.asarray(x, dtype=np.float64), np.arange(n))), (name, var, s)
    assert ds.tessera_complete_steps == 3
    ds.close()
    # xarray opens it as it is
    xds = xr.open_dataset(f"{tmp}/{name}.nc")
    assert xds["pressure"].sizes["time"] == 3
print("ugrid checks passed")
PY
finish 2
