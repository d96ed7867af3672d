#!/usr/bin/env bash
# Mesh datasets as MeshGraphNets' h5 conversions and graph-physics deliver
# them (REFERENCE.md, "Mesh files"): a folder of train.h5, valid.h5 and
# test.h5 (groups "0", "1", ... renumbered per file) with ONE meta.json.
# An independent writer (python3 + h5py) builds two such folders from the
# four trajectories of a tiny tessera synth-mesh file: train.h5 holds 2,
# valid.h5 1, test.h5 1 (each with its own node count), in two storages
# of the same data:
#   tiled/  statics tiled per step, (T, N, C), declared [T, -1, C], as
#           graph-physics' cylinder meta (dt first, no pressure listed
#           though the files hold it);
#   flat/   statics (1, N, C), declared [1, -1, C], as MeshGraphNets' own
#           meta (simulator, collision_radius null, pressure listed).
# Then:
# 1. train mesh.file=tiled/train.h5 mesh.valid_file=tiled/valid.h5 runs and
#    logs 2 training and 1 validation trajectories; the same training with
#    test.h5 as the validation file has bit-identical training losses and
#    another validation loss (validation reads the file it is given);
# 2. forecast and score with mesh.test_file=tiled/test.h5 roll out the test
#    file's trajectory: the UGRID rollout's node count and coordinates
#    (read with netCDF4) equal test.h5's (read with h5py), and score's
#    persistence RMSE equals numpy's over test.h5's velocity;
# 3. the flat folder trains to bit-identical losses and validation losses
#    (the same data stored another way);
# 4. train.h5 in a folder without meta.json: exit 1, one error line naming
#    both paths tried; with mesh.meta naming a meta elsewhere it trains;
# 5. a static stored with the wrong step count (T - 1, N, 2) is refused:
#    exit 1, one error line naming the file, trajectory and dataset.
# usage: test_mesh_delivered.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

"$tessera" synth-mesh out="$tmp/synth" synth_mesh.lattice=24 synth_mesh.trajectories=4 synth_mesh.steps=12 \
  synth_mesh.re_min=40 synth_mesh.re_max=70 synth_mesh.spinup=0.5 synth_mesh.mesh_size=0.12 synth_mesh.refine=2 \
  >"$tmp/synth.log" 2>&1 && ok || { echo "FAIL: synth-mesh: $(tail -2 "$tmp/synth.log")"; exit 1; }

if /usr/bin/python3 - "$tmp" <<'PY'; then ok; else echo "FAIL: cannot build the dataset folders"; exit 1; fi
import json, os, sys
import h5py, numpy as np
tmp = sys.argv[1]
src = h5py.File(f"{tmp}/synth/synth_mesh.h5", "r")
T = src["0"]["velocity"].shape[0]
nodes = [src[str(k)]["mesh_pos"].shape[0] for k in range(4)]
assert len(set(nodes)) == 4, nodes  # every trajectory its own node count: the rollout's tells which it is
splits = {"train": [0, 1], "valid": [2], "test": [3]}
STATIC = {"cells": ("int32", 3), "mesh_pos": ("float32", 2), "node_type": ("int32", 1)}
DYNAMIC = {"velocity": ("float32", 2), "pressure": ("float32", 1)}

def write(folder, lead, bad=None):
    os.makedirs(folder)
    for split, trajs in splits.items():
        with h5py.File(f"{folder}/{split}.h5", "w") as f:
            for i, k in enumerate(trajs):
                g = f.create_group(str(i))
                for name in STATIC:
                    a = src[str(k)][name][...]
                    n = (T - 1 if bad == (split, i, name) else T) if lead == "T" else 1
                    g[name] = np.repeat(a[None], n, axis=0)
                for name in DYNAMIC:
                    g[name] = src[str(k)][name][...]

def feat(kind, dtype, lead, c):
    return {"type": kind, "shape": [lead, -1, c], "dtype": dtype}

# graph-physics' cylinder meta: statics tiled, pressure not listed
write(f"{tmp}/tiled", "T")
meta = {"dt": 0.01,
        "features": {**{n: feat("static", d, T, c) for n, (d, c) in STATIC.items()},
                     "velocity": feat("dynamic", "float32", T, 2)},
        "field_names": ["cells", "mesh_pos", "node_type", "velocity"], "trajectory_length": T}
json.dump(meta, open(f"{tmp}/tiled/meta.json", "w"), indent=2)
# MeshGraphNets' own meta: statics [1, -1, C], stored (1, N, C)
write(f"{tmp}/flat", "1")
meta = {"simulator": "comsol", "dt": 0.01, "collision_radius": None,
        "features": {**{n: feat("static", d, 1, c) for n, (d, c) in STATIC.items()},
                     **{n: feat("dynamic", d, T, c) for n, (d, c) in DYNAMIC.items()}},
        "field_names": ["cells", "mesh_pos", "node_type", "velocity", "pressure"], "trajectory_length": T}
json.dump(meta, open(f"{tmp}/flat/meta.json", "w"), indent=2)
# train.h5 without its meta.json, and a tiled train.h5 whose trajectory 1 has one step too few of mesh_pos
os.makedirs(f"{tmp}/nometa")
os.link(f"{tmp}/tiled/train.h5", f"{tmp}/nometa/train.h5")
write(f"{tmp}/badt", "T", bad=("train", 1, "mesh_pos"))
os.link(f"{tmp}/tiled/meta.json", f"{tmp}/badt/meta.json")
PY

small=(model.kind=mesh model.dim=16 model.heads=2 model.hidden=32 model.depth=2 mesh.globals=2 mesh.window=3
       train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 train.val_every=2
       train.val_samples=2 train.steps=4 seed=5)
# step, loss and validation loss of every logged step, exactly as written
losses() { /usr/bin/python3 -c 'import json,sys; [print(e["step"], repr(e["loss"]), repr(e["val_loss"])) for e in map(json.loads, open(sys.argv[1])) if e["event"]=="train_step"]' "$1/tessera.jsonl"; }

# 1. validation trajectories from their own file
D=$tmp/tiled
"$tessera" train out="$tmp/a" "${small[@]}" mesh.file="$D/train.h5" mesh.valid_file="$D/valid.h5" >"$tmp/a.log" 2>&1 \
  && ok || fail "train with mesh.valid_file: $(tail -2 "$tmp/a.log")"
grep -q "2 training trajectories .* of $D/train.h5, 1 validation trajectories of $D/valid.h5" "$tmp/a.log" && ok \
  || fail "the log does not report 2 training trajectories of train.h5 and 1 of valid.h5: $(grep -m1 'training trajectories' "$tmp/a.log")"
"$tessera" train out="$tmp/v" "${small[@]}" mesh.file="$D/train.h5" mesh.valid_file="$D/test.h5" >"$tmp/v.log" 2>&1 \
  && ok || fail "train with test.h5 as the validation file: $(tail -2 "$tmp/v.log")"
if /usr/bin/python3 - "$tmp/a/tessera.jsonl" "$tmp/v/tessera.jsonl" <<'PY'; then ok; else fail "validation file: losses"; fi
import json, sys
def steps(p):
    return [e for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert [e["loss"] for e in a] == [e["loss"] for e in b], "the validation file changed the training losses"
va = [e["val_loss"] for e in a if not isinstance(e["val_loss"], str)]
vb = [e["val_loss"] for e in b if not isinstance(e["val_loss"], str)]
assert len(va) == len(vb) >= 2, (va, vb)
assert all(x != y for x, y in zip(va, vb)), ("valid.h5 and test.h5 give the same validation loss", va, vb)
PY

# 2. forecast and score roll out the test file's trajectory
fc=(model.kind=mesh mesh.file="$D/train.h5" mesh.test_file="$D/test.h5" forecast.checkpoint="$tmp/a/checkpoint.h5")
"$tessera" forecast out="$tmp/f" "${fc[@]}" >"$tmp/f.log" 2>&1 && ok || fail "forecast mesh.test_file: $(tail -2 "$tmp/f.log")"
"$tessera" score out="$tmp/f" "${fc[@]}" >"$tmp/s.log" 2>&1 && ok || fail "score mesh.test_file: $(tail -2 "$tmp/s.log")"
if /usr/bin/python3 - "$tmp" "$D/test.h5" <<'PY'; then ok; else fail "the rollout is not test.h5's trajectory"; fi
import csv, sys
import h5py, netCDF4, numpy as np
tmp, test = sys.argv[1], sys.argv[2]
truth = h5py.File(test, "r")["0"]
pos = truth["mesh_pos"][0]  # tiled (T, N, 2): every step the same
ds = netCDF4.Dataset(f"{tmp}/f/rollout.nc")
assert ds.dimensions["nMesh2d_node"].size == pos.shape[0], (ds.dimensions["nMesh2d_node"].size, pos.shape)
assert np.allclose(ds["mesh2d_node_x"][:], pos[:, 0]) and np.allclose(ds["mesh2d_node_y"][:], pos[:, 1])
vel = truth["velocity"][...].astype(np.float64)
S = ds.dimensions["time"].size
assert S == vel.shape[0] - 1, (S, vel.shape)
rows = {(r["metric"], r["system"]): r for r in csv.DictReader(open(f"{tmp}/f/mesh_scorecard.csv"))}
got = float(rows[("rmse_all_rollout", "persistence")]["value"])
want = np.sqrt(np.mean((vel[0] - vel[1:]) ** 2))
assert abs(got - want) <= 1e-6 * want, (got, want)
assert rows[("rmse_all_rollout", "persistence")]["trajectory"] == "0"
PY

# 3. the same data stored flat: the same losses, bit for bit
"$tessera" train out="$tmp/b" "${small[@]}" mesh.file="$tmp/flat/train.h5" mesh.valid_file="$tmp/flat/valid.h5" \
  >"$tmp/b.log" 2>&1 && ok || fail "train on the flat folder: $(tail -2 "$tmp/b.log")"
la=$(losses "$tmp/a") lb=$(losses "$tmp/b")
if [ -n "$la" ] && [ "$la" = "$lb" ]; then ok; else fail "tiled and flat statics train differently: $la | $lb"; fi

# bad input: the exit code and one error line naming what is wrong
bad() { local want=$1; shift; local res=(); while [ "$1" != -- ]; do res+=("$1"); shift; done; shift
  "$@" >"$tmp/o" 2>"$tmp/err"; local rc=$? miss=""
  for r in "${res[@]}"; do grep -qF -- "$r" "$tmp/err" || miss="$miss [$r]"; done
  if [ $rc = "$want" ] && [ "$(wc -l <"$tmp/err")" = 1 ] && [ "$(grep -c '^tessera: ' "$tmp/err")" = 1 ] && [ -z "$miss" ]
  then ok; else fail "exit $rc (want $want), lacking$miss: $(cat "$tmp/err")"; fi; }

# 4. no meta.json in the folder, then one named by mesh.meta
bad 1 "$tmp/nometa/train.h5" "$tmp/nometa/train.json" "$tmp/nometa/meta.json" -- \
  "$tessera" train out="$tmp/x1" "${small[@]}" mesh.file="$tmp/nometa/train.h5"
"$tessera" train out="$tmp/m" "${small[@]}" train.steps=1 mesh.file="$tmp/nometa/train.h5" mesh.meta="$D/meta.json" \
  >"$tmp/m.log" 2>&1 && ok || fail "train with mesh.meta: $(tail -2 "$tmp/m.log")"

# 5. a static with one step too few
short=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["trajectory_length"] - 1)' "$D/meta.json")
bad 1 "$tmp/badt/train.h5: trajectory 1: dataset mesh_pos has shape ($short, " -- \
  "$tessera" train out="$tmp/x2" "${small[@]}" mesh.file="$tmp/badt/train.h5"

finish
