#!/usr/bin/env bash
# The mesh path end to end on a 3-D tetrahedral mesh (REFERENCE.md, "Mesh
# files": mesh_pos N x 3 or T x N x 3, cells F x 4, velocity T x N x 3).
# An independent writer (python3 + h5py) builds a graph-physics file: a
# 6 x 5 x 4 lattice of nodes, each cube cut into the 6 tetrahedra of its
# Kuhn (Freudenthal) split, INFLOW on x = 0, OUTFLOW on x = max,
# WALL_BOUNDARY on the other faces, NORMAL inside; a smooth analytic
# velocity that varies in space and time; 3 trajectories x 12 steps, stored
# as T x N x 3 / T x F x 4 / T x N x 1 as graph-physics does. Then:
# - train, forecast and score run; the same run twice gives the same losses;
# - SP = 2 training gives the 1-rank losses within 1e-5;
# - the rollout is UGRID-1.0 with a mesh3d topology (topology_dimension 3)
#   whose volume_node_connectivity equals the input cells and node
#   coordinates equal mesh_pos, with velocity_x/_y/_z and their _1step
#   variables; nodes outside the loss (INFLOW, WALL) equal the truth
#   exactly; every value finite;
# - score's RMSEs equal a numpy computation of their definitions over all
#   three components;
# - bad input, one error line and a non-zero exit: tetrahedral cells with
#   2-D positions (naming the file, trajectory and dataset); 2-component
#   velocity on a 3-D mesh; a forecast with a checkpoint trained on a 2-D
#   mesh and the reverse, and a training run resuming a 2-D checkpoint on
#   the 3-D file (naming both component counts).
# usage: test_mesh3d.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

# the files: cube.h5 (3-D, good), flat4.h5 (2-D positions, 4-node cells),
# vel2.h5 (3-D mesh, 2-component velocity), square.h5 (a good 2-D file)
if /usr/bin/python3 - "$tmp" <<'PY'; then ok; else echo "FAIL: cannot build the test files"; exit 1; fi
import itertools, json, sys
import h5py, numpy as np
tmp = sys.argv[1]
T, dt = 12, 0.05

def write(name, trajs, shapes):
    meta = {"field_names": list(shapes), "trajectory_length": T, "dt": dt,
            "features": {k: {"type": "dynamic" if k == "velocity" else "static",
                             "shape": [T if k == "velocity" else 1, -1, c],
                             "dtype": "float32" if k in ("mesh_pos", "velocity") else "int32"}
                         for k, c in shapes.items()}}
    with h5py.File(f"{tmp}/{name}.h5", "w") as f:
        for i, d in enumerate(trajs):
            g = f.create_group(str(i))
            for k, v in d.items():
                g[k] = v
    json.dump(meta, open(f"{tmp}/{name}.json", "w"), indent=1)

# 6 x 5 x 4 nodes on [0, 1] x [0, 0.8] x [0, 0.6], node (i, j, k) numbered i + 6 (j + 5 k)
nx, ny, nz = 6, 5, 4
ids = lambda i, j, k: i + nx * (j + ny * k)
g = np.stack(np.meshgrid(np.linspace(0, 1, nx), np.linspace(0, 0.8, ny), np.linspace(0, 0.6, nz), indexing="ij"), -1)
pos = np.zeros((nx * ny * nz, 3), np.float32)
for i, j, k in itertools.product(range(nx), range(ny), range(nz)):
    pos[ids(i, j, k)] = g[i, j, k]
tets = []
for i, j, k in itertools.product(range(nx - 1), range(ny - 1), range(nz - 1)):
    for perm in itertools.permutations(range(3)):  # the path 000 -> 111 along the axes in this order
        c = [i, j, k]
        tet = [ids(*c)]
        for a in perm:
            c[a] += 1
            tet.append(ids(*c))
        tets.append(tet)
cells = np.array(tets, np.int32)
x, y, z = pos[:, 0], pos[:, 1], pos[:, 2]
types = np.where(x == 0, 4, np.where(x == 1, 5, np.where((y == 0) | (y == 0.8) | (z == 0) | (z == 0.6), 6, 0)))
types = types.astype(np.int32)[:, None]

def velocity(phase, amp):
    t = np.arange(T)[:, None] * dt
    u = 1 + amp * np.sin(2 * np.pi * x - 3 * t + phase) * np.cos(np.pi * y)
    v = 0.4 * amp * np.cos(np.pi * x + 2 * t) * np.sin(np.pi * z / 0.6)
    w = 0.3 * amp * np.sin(np.pi * y / 0.8 + t + phase) * np.cos(2 * np.pi * x)
    return np.stack([u, v, w], -1).astype(np.float32)  # (T, N, 3)

traj = [{"mesh_pos": np.repeat(pos[None], T, 0), "cells": np.repeat(cells[None], T, 0),
         "node_type": np.repeat(types[None], T, 0), "velocity": velocity(0.7 * n, 0.3 + 0.1 * n)} for n in range(3)]
write("cube", traj, {"mesh_pos": 3, "cells": 4, "node_type": 1, "velocity": 3})
write("flat4", [{"mesh_pos": pos[:, :2], "cells": cells, "node_type": types, "velocity": traj[0]["velocity"][..., :2]}],
      {"mesh_pos": 2, "cells": 4, "node_type": 1, "velocity": 2})
write("vel2", [dict(traj[0], velocity=traj[0]["velocity"][..., :2])] * 2,
      {"mesh_pos": 3, "cells": 4, "node_type": 1, "velocity": 2})
# a 2-D square of 5 x 5 nodes, two triangles per square
sq = np.stack(np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 1, 5), indexing="ij"), -1).reshape(-1, 2).astype(np.float32)
tri = np.array([t for i in range(4) for j in range(4) for t in
                ([5 * i + j, 5 * i + j + 5, 5 * i + j + 6], [5 * i + j, 5 * i + j + 6, 5 * i + j + 1])], np.int32)
sqt = np.where(sq[:, 0] == 0, 4, np.where(sq[:, 0] == 1, 5, np.where((sq[:, 1] == 0) | (sq[:, 1] == 1), 6, 0)))
sqv = np.stack([1 + 0.1 * np.sin(sq[:, 1] + np.arange(T)[:, None] * dt), 0 * np.arange(T)[:, None] + 0.1 * sq[:, 0]], -1)
write("square", [{"mesh_pos": sq, "cells": tri, "node_type": sqt.astype(np.int32)[:, None], "velocity": sqv.astype(np.float32)}] * 2,
      {"mesh_pos": 2, "cells": 3, "node_type": 1, "velocity": 2})
PY

h5=$tmp/cube.h5
common=(model.kind=mesh mesh.file="$h5" model.dim=16 model.heads=2 model.hidden=32 model.depth=2 mesh.globals=2
        mesh.window=3 train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 train.val_every=3
        train.val_samples=2 seed=5)
losses() { /usr/bin/python3 -c 'import json,sys; [print(e["step"], repr(e["loss"])) for e in map(json.loads, open(sys.argv[1])) if e["event"]=="train_step"]' "$1/tessera.jsonl"; }

"$tessera" train out="$tmp/a" "${common[@]}" train.steps=12 >"$tmp/a.log" 2>&1 && ok || fail "train: $(tail -2 "$tmp/a.log")"
"$tessera" train out="$tmp/b" "${common[@]}" train.steps=12 >"$tmp/b.log" 2>&1 && ok || fail "train again"
[ -n "$(losses "$tmp/a")" ] && [ "$(losses "$tmp/a")" = "$(losses "$tmp/b")" ] && ok || fail "the same run twice differs"

# SP = 2 splits each tetrahedral graph over two ranks: the same losses
# within 1e-5 (the same terms summed in another order)
"$tessera" train out="$tmp/s1" "${common[@]}" train.steps=4 >"$tmp/s1.log" 2>&1 && ok || fail "train 4 steps"
if mpiexec -n 2 "$tessera" train out="$tmp/sp2" "${common[@]}" train.steps=4 parallel.sp=2 >"$tmp/sp2.log" 2>&1; then ok
else fail "sp=2: $(tail -2 "$tmp/sp2.log")"; fi
if /usr/bin/python3 - "$tmp/s1/tessera.jsonl" "$tmp/sp2/tessera.jsonl" <<'PY'; then ok; else fail "sp=2 losses differ"; fi
import json, sys
def losses(p):
    return [e["loss"] for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) == 4, (a, b)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-5 * abs(x), (x, y)
PY

fc=(model.kind=mesh mesh.file="$h5" forecast.checkpoint="$tmp/a/checkpoint.h5")
"$tessera" forecast out="$tmp/f" "${fc[@]}" >"$tmp/f.log" 2>&1 && ok || fail "forecast: $(tail -2 "$tmp/f.log")"
"$tessera" score out="$tmp/f" model.kind=mesh mesh.file="$h5" >"$tmp/s.log" 2>&1 && ok || fail "score: $(tail -2 "$tmp/s.log")"

if /usr/bin/python3 - "$tmp" "$h5" <<'PY'; then ok; else fail "independent reader checks"; fi
import csv, sys
import h5py, netCDF4, numpy as np
tmp, h5 = sys.argv[1], sys.argv[2]
ds = netCDF4.Dataset(f"{tmp}/f/rollout.nc")
truth = h5py.File(h5)["2"]  # the first trajectory training did not use
assert ds.Conventions == "CF-1.8 UGRID-1.0", ds.Conventions
m = ds["mesh3d"]
assert m.cf_role == "mesh_topology" and m.topology_dimension == 3, (m.cf_role, m.topology_dimension)
assert m.node_coordinates == "mesh3d_node_x mesh3d_node_y mesh3d_node_z", m.node_coordinates
conn = ds[m.volume_node_connectivity]
assert conn.cf_role == "volume_node_connectivity" and conn.start_index == 0
assert np.array_equal(conn[:], truth["cells"][0]), "volume_node_connectivity differs from the input cells"
pos = truth["mesh_pos"][0]
for a, axis in enumerate("xyz"):
    assert np.array_equal(ds[f"mesh3d_node_{axis}"][:], pos[:, a].astype(np.float64)), axis
types = truth["node_type"][0, :, 0]
assert np.array_equal(ds["node_type"][:], types)
vel = truth["velocity"][...].astype(np.float64)  # (T, N, 3)
S = ds.dimensions["time"].size
assert S == vel.shape[0] - 1, (S, vel.shape)
for v in ("velocity_x", "velocity_y", "velocity_z", "velocity_x_1step", "velocity_y_1step", "velocity_z_1step"):
    assert ds[v].mesh == "mesh3d" and ds[v].location == "node", v
roll = np.stack([ds[f"velocity_{a}"][:] for a in "xyz"], -1).astype(np.float64)
one = np.stack([ds[f"velocity_{a}_1step"][:] for a in "xyz"], -1).astype(np.float64)
assert roll.shape == one.shape == vel[1:].shape, (roll.shape, vel.shape)
assert np.isfinite(roll).all() and np.isfinite(one).all()
fixed = ~np.isin(types, [0, 5])
assert fixed.sum() > 0 and (~fixed).sum() > 0
assert np.array_equal(roll[:, fixed], vel[1:, fixed]), "boundary nodes not from truth"
assert np.array_equal(one[:, fixed], vel[1:, fixed]), "one-step boundary nodes not from truth"
# the model moved the free nodes (it is not a copy of the truth)
assert not np.array_equal(roll[:, ~fixed], vel[1:, ~fixed])
rmse = lambda e: np.sqrt(np.mean(e ** 2))
want = {("rmse_1step", "tessera"): rmse(one - vel[1:]), ("rmse_1step", "persistence"): rmse(vel[:-1] - vel[1:]),
        ("rmse_all_rollout", "tessera"): rmse(roll - vel[1:]), ("rmse_all_rollout", "persistence"): rmse(vel[0] - vel[1:]),
        ("rmse_rollout50", "tessera"): rmse(roll[:50] - vel[1:51]), ("rmse_rollout50", "persistence"): rmse(vel[0] - vel[1:51])}
got = {(r["metric"], r["system"]): float(r["value"]) for r in csv.DictReader(open(f"{tmp}/f/mesh_scorecard.csv"))}
assert set(got) == set(want), (got, want)
for key, w in want.items():
    assert abs(got[key] - w) <= 1e-6 * w, (key, got[key], w)  # float64 sums in another order
print("mesh3d checks passed:", {k: round(v, 5) for k, v in got.items()})
PY

# bad input: one error line, the exit code, the words that say what is wrong
bad() { local want=$1 re=$2; shift 2; "$@" >"$tmp/o" 2>"$tmp/err"; local rc=$?
  if [ $rc = "$want" ] && [ "$(grep -c '^tessera: ' "$tmp/err")" = 1 ] && grep -qE "$re" "$tmp/err"; then ok
  else fail "$*: exit $rc (want $want), want /$re/: $(cat "$tmp/err")"; fi; }
small=(model.kind=mesh model.dim=16 model.heads=2 model.hidden=32 model.depth=1 mesh.globals=1 train.steps=2 train.batch=1)
bad 1 "flat4\.h5: trajectory 0: dataset cells has 4 nodes per cell with 2-D mesh_pos" \
  "$tessera" train out="$tmp/x1" "${small[@]}" mesh.file="$tmp/flat4.h5"
bad 1 "vel2\.h5 has no 3-component dynamic field 'velocity'" \
  "$tessera" train out="$tmp/x2" "${small[@]}" mesh.file="$tmp/vel2.h5"
"$tessera" train out="$tmp/sq" "${small[@]}" mesh.file="$tmp/square.h5" >"$tmp/sq.log" 2>&1 && ok \
  || fail "train on the 2-D square: $(tail -2 "$tmp/sq.log")"
bad 1 "sq/checkpoint\.h5 was trained on 2 velocity components .*cube\.h5 has 3" \
  "$tessera" forecast out="$tmp/x3" model.kind=mesh mesh.file="$h5" forecast.checkpoint="$tmp/sq/checkpoint.h5"
bad 1 "a/checkpoint\.h5 was trained on 3 velocity components .*square\.h5 has 2" \
  "$tessera" forecast out="$tmp/x4" model.kind=mesh mesh.file="$tmp/square.h5" forecast.checkpoint="$tmp/a/checkpoint.h5"
bad 1 "sq/checkpoint\.h5 was trained on 2 velocity components .*cube\.h5 has 3" \
  "$tessera" train out="$tmp/sq" "${small[@]}" mesh.file="$h5" train.steps=4

finish
