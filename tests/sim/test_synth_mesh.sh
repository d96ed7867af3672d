#!/bin/bash
# tessera synth-mesh end to end on a tiny setting, checked by an independent
# reader (Debian's python3 with h5py and json): layout, shapes and dtypes
# against the meta JSON, valid cells, node types, boundary values, mesh
# refinement; then the C reader (test_mesh_file --check) accepts the file and
# refuses a truncated copy and one whose cells name a missing node.
#
#   bash test_synth_mesh.sh <path/to/tessera> <source dir>
set -u
TESSERA=${1:?usage: test_synth_mesh.sh <path/to/tessera> <source dir>}
READER=$(dirname "$TESSERA")/tests/test_mesh_file
PY=/usr/bin/python3
. "$(dirname "$0")/../lib.sh"
TMP=$tmp
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# The tiny setting: a coarse lattice forces a low Reynolds range (Re/17 cells rule).
TINY="synth_mesh.lattice=24 synth_mesh.trajectories=2 synth_mesh.steps=20 synth_mesh.re_min=40 synth_mesh.re_max=70 synth_mesh.spinup=0.5"
out=$TMP/out
check "synth-mesh runs (tiny setting)" bash -c "'$TESSERA' synth-mesh out='$out' $TINY >'$TMP/run.log' 2>&1"
check "progress line per trajectory with ETA" bash -c "[ \$(grep -c 'trajectory [12]/2 .*ETA' '$TMP/run.log') -eq 2 ]"
check "no partial (.part) file left" bash -c "! ls '$out' | grep -q '\.part$'"

cat >"$TMP/check.py" <<'PYEOF'
"""Independent check of a graph-physics mesh file (REFERENCE.md, Mesh files)."""
import json, sys
import numpy as np, h5py
h5, meta_path = sys.argv[1], sys.argv[2]
problems = []
def want(c, msg):
    if not c: problems.append(msg)
meta = json.load(open(meta_path))
T = meta["trajectory_length"]
want(T == 20 and abs(meta["dt"] - 0.01) < 1e-12, "trajectory_length/dt")
want(set(meta["features"]) == {"mesh_pos", "cells", "node_type", "velocity", "pressure"}, "feature names")
H, L = 0.41, 1.6
f = h5py.File(h5, "r")
want(sorted(f.keys()) == ["0", "1"], "groups %s" % list(f.keys()))
for g in f.values():
    N = g["mesh_pos"].shape[0]
    for name, ft in meta["features"].items():
        d = g[name]
        want(str(d.dtype) == ft["dtype"], "%s dtype %s vs %s" % (name, d.dtype, ft["dtype"]))
        s = ft["shape"]
        want(d.shape[-1] == s[2], "%s channels" % name)
        if ft["type"] == "dynamic":
            want(d.shape == (s[0], N, s[2]) and s[0] == T, "%s shape %s" % (name, d.shape))
        else:
            want(s[0] == 1 and d.ndim == 2, "%s static shape %s" % (name, d.shape))
            # graph-physics reshapes every feature to the meta shape
            want(d[()].reshape([1, -1, s[2]]).shape[1] == d.shape[0], "%s reshape" % name)
    pos, cells = g["mesh_pos"][()], g["cells"][()]
    nt = g["node_type"][()][:, 0]
    want(cells.min() >= 0 and cells.max() < N, "cells name nodes outside [0, N)")
    want(len(np.unique(cells)) == N, "nodes outside every cell")
    for t in (0, 1, 4, 5, 6):
        want((nt == t).any(), "node type %d absent" % t)
    want(set(np.unique(nt)) <= {0, 1, 4, 5, 6}, "unexpected node types")
    v, p = g["velocity"][()], g["pressure"][()]
    want(np.isfinite(v).all() and np.isfinite(p).all(), "non-finite values")
    want(np.abs(v[:, (nt == 1) | (nt == 6)]).max() == 0, "obstacle/wall nodes move")
    # inflow: parabola 4 U y (H - y) / H^2 with one U, v = 0
    y = pos[nt == 4, 1]
    shape = 4 * y * (H - y) / H**2
    u = v[:, nt == 4, 0]
    U = u[0].max() / shape.max()
    want(np.abs(u - U * shape[None]).max() <= 1e-5 * U and np.abs(v[:, nt == 4, 1]).max() == 0, "inflow not parabolic")
    want(np.allclose(pos[nt == 4, 0], 0) and np.allclose(pos[nt == 5, 0], L), "inflow/outflow positions")
    want(np.all((np.isclose(pos[nt == 6, 1], 0)) | np.isclose(pos[nt == 6, 1], H)), "wall positions")
    # the flow moves: mean streamwise velocity of NORMAL nodes near the mean inflow
    want(0.3 * U < v[-1, nt == 0, 0].mean() < 1.5 * U, "interior flow")
    # finer near the obstacle: mean edge length within 0.1 of it vs beyond 0.5
    e = np.concatenate([cells[:, [0, 1]], cells[:, [1, 2]], cells[:, [2, 0]]])
    length = np.linalg.norm(pos[e[:, 0]] - pos[e[:, 1]], axis=1)
    obst = pos[nt == 1]
    mid = 0.5 * (pos[e[:, 0]] + pos[e[:, 1]])
    dist = np.min(np.linalg.norm(mid[:, None, :] - obst[None, :, :], axis=2), axis=1)
    near, far = length[dist < 0.02].mean(), length[dist > 0.5].mean()
    want(near < 0.6 * far, "mesh not finer near the obstacle: %.4f vs %.4f" % (near, far))
if problems:
    print("\n".join(problems)); sys.exit(1)
PYEOF
check "independent reader: layout, meta, cells, node types, boundary values, refinement" \
    $PY "$TMP/check.py" "$out/synth_mesh.h5" "$out/synth_mesh.json"
check "the C reader accepts the file" "$READER" --check "$out/synth_mesh.h5"

cp "$out/synth_mesh.json" "$TMP/cut.json"
head -c 100000 "$out/synth_mesh.h5" >"$TMP/cut.h5"
check "a truncated copy is refused with one line" bash -c "! '$READER' --check '$TMP/cut.h5' 2>'$TMP/e' && [ \$(wc -l <'$TMP/e') -eq 1 ] && grep -q cut.h5 '$TMP/e'"
cp "$out/synth_mesh.json" "$TMP/bad.json"
cp "$out/synth_mesh.h5" "$TMP/bad.h5"
$PY -c "
import h5py, sys
f = h5py.File('$TMP/bad.h5', 'r+'); g = f['1']
c = g['cells'][()]; c[7, 1] = g['mesh_pos'].shape[0]; g['cells'][...] = c
"
check "cells naming a missing node are refused, naming trajectory and dataset" \
    bash -c "! '$READER' --check '$TMP/bad.h5' 2>'$TMP/e' && grep -q 'trajectory 1: dataset cells' '$TMP/e'"
check "too coarse a lattice for re_max -> exit 2 naming synth_mesh.lattice" \
    bash -c "'$TESSERA' synth-mesh out='$TMP/x' synth_mesh.re_max=300 >/dev/null 2>'$TMP/e'; [ \$? -eq 2 ] && grep -q synth_mesh.lattice '$TMP/e'"
finish
