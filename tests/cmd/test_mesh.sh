#!/usr/bin/env bash
# The mesh path end to end on a tiny synth-mesh file:
# - the same run twice is bit-identical (weights and losses);
# - SIGUSR1 mid-run: checkpoint, clean exit, and a resume that ends equal to
#   the straight run in every weight, optimizer moment and loss;
# - DP = 2 ranks against 1 rank: the same losses within 1e-5;
# - SP = 2 and DP = 2 x SP = 2 against 1 rank: the same losses,
#   validation losses and validation skills within 1e-5, and every rank's halo bytes of each step
#   equal to the analytic count of its halo lists (non-zero);
# - forecast with SP = 2 against 1 rank: the first rollout step, and every
#   one-step prediction from the truth, within 1e-5;
# - forecast writes UGRID that an independent reader (python3-netCDF4 +
#   h5py) finds consistent with the input: same nodes, cells and types, the
#   nodes outside the loss taken from the truth; a rollout killed with
#   SIGKILL resumes and ends identical to an uninterrupted one;
# - score's RMSEs equal a numpy computation of their definitions;
# - bad input: one error line, non-zero exit.
# usage: test_mesh.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

"$tessera" synth-mesh out="$tmp/data" synth_mesh.lattice=24 synth_mesh.trajectories=3 synth_mesh.steps=24 \
  synth_mesh.re_min=40 synth_mesh.re_max=70 synth_mesh.spinup=0.5 >"$tmp/synth.log" 2>&1 \
  && ok || { echo "FAIL: synth-mesh: $(tail -2 "$tmp/synth.log")"; exit 1; }
h5=$tmp/data/synth_mesh.h5
common=(model.kind=mesh mesh.file="$h5" model.dim=16 model.heads=2 model.hidden=32 model.depth=2 mesh.globals=2
        mesh.window=3 train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 train.val_every=4
        train.val_samples=2 seed=7)

same_weights() { # exact equality of every dataset of two checkpoints
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
assert a.attrs["model_kind"] in (b"mesh", "mesh"), a.attrs["model_kind"]
for g in ("params", "ema", "adam_m", "adam_v", "normalizers"):
    for k in a[g]:
        if not np.array_equal(a[g][k][...], b[g][k][...]):
            sys.exit(f"{g}/{k} differs")
assert a.attrs["step"] == b.attrs["step"]
PY
}
losses() { /usr/bin/python3 -c 'import json,sys; [print(e["step"], repr(e["loss"])) for e in map(json.loads, open(sys.argv[1])) if e["event"]=="train_step"]' "$1/tessera.jsonl"; }

"$tessera" train out="$tmp/a" "${common[@]}" train.steps=8 >"$tmp/a.log" 2>&1 && ok || fail "train: $(tail -2 "$tmp/a.log")"
"$tessera" train out="$tmp/b" "${common[@]}" train.steps=8 >"$tmp/b.log" 2>&1 && ok || fail "train again"
if same_weights "$tmp/a/checkpoint.h5" "$tmp/b/checkpoint.h5" && [ "$(losses "$tmp/a")" = "$(losses "$tmp/b")" ]; then ok
else fail "the same run twice differs"; fi

# SIGUSR1 mid-run; the model is larger so the run is still going when it arrives
big=(model.dim=48 model.hidden=96 model.depth=4 train.steps=40)
"$tessera" train out="$tmp/c" "${common[@]}" "${big[@]}" >"$tmp/c.log" 2>&1 && ok || fail "straight run"
"$tessera" train out="$tmp/e" "${common[@]}" "${big[@]}" >"$tmp/e1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "step 3/40" "$tmp/e1.log" 2>/dev/null && break; sleep 0.01; done
kill -USR1 $pid 2>/dev/null
wait $pid
rc=$?
[ $rc = 0 ] && grep -q "stopping at step" "$tmp/e1.log" && ok || fail "SIGUSR1: exit $rc, $(tail -2 "$tmp/e1.log")"
"$tessera" train out="$tmp/e" "${common[@]}" "${big[@]}" >"$tmp/e2.log" 2>&1 && ok || fail "resume"
grep -q "resuming from" "$tmp/e2.log" && ok || fail "the second run did not resume"
if same_weights "$tmp/c/checkpoint.h5" "$tmp/e/checkpoint.h5"; then ok; else fail "interrupted + resumed differs from straight"; fi
if /usr/bin/python3 - "$tmp/c/tessera.jsonl" "$tmp/e/tessera.jsonl" <<'PY'; then ok; else fail "losses after resume"; fi
import json, sys
def losses(p):
    out = {}
    for e in map(json.loads, open(p)):
        if e["event"] == "train_step":
            out.setdefault(e["step"], []).append(e["loss"])
    return out
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert set(a) == set(range(1, 41)), sorted(a)
for s, vs in b.items():
    for v in vs:
        assert a[s][0] == v, (s, a[s], v)
PY

# DP = 2 against 1 rank; these runs push half their samples
# (mesh.pushforward=0.5: the input is the model's own rollout of 1 to 3
# steps, mesh.pushforward_steps=3) and add a constant offset to each
# (mesh.noise_offset), whose decisions and inputs must not depend on the
# layout either; pushes of one step only give other losses
push=(mesh.pushforward=0.5 mesh.pushforward_steps=3 mesh.noise_offset=0.01)
if mpiexec -n 2 "$tessera" train out="$tmp/dp2" "${common[@]}" train.steps=4 "${push[@]}" parallel.dp=2 >"$tmp/dp2.log" 2>&1; then ok
else fail "dp=2: $(tail -2 "$tmp/dp2.log")"; fi
"$tessera" train out="$tmp/dp1" "${common[@]}" train.steps=4 mesh.val_rollout=5 "${push[@]}" >"$tmp/dp1.log" 2>&1 &&
  ok || fail "dp=1"
"$tessera" train out="$tmp/pf0" "${common[@]}" train.steps=4 >"$tmp/pf0.log" 2>&1 && ok || fail "dp=1 without pushforward"
"$tessera" train out="$tmp/pf1" "${common[@]}" train.steps=4 "${push[@]}" mesh.pushforward_steps=1 >"$tmp/pf1.log" 2>&1 &&
  ok || fail "dp=1 with one-step pushes"
if /usr/bin/python3 - "$tmp/dp1/tessera.jsonl" "$tmp/dp2/tessera.jsonl" "$tmp/pf0/tessera.jsonl" "$tmp/pf1/tessera.jsonl" <<'PY'; then ok; else fail "dp=2 losses, or pushforward"; fi
import json, sys
def losses(p):
    return [e["loss"] for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b, c, d = (losses(p) for p in sys.argv[1:5])
assert len(a) == len(b) == len(c) == len(d) == 4, (a, b, c, d)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-5 * abs(x), (x, y)
assert any(abs(x - z) > 1e-3 * abs(z) for x, z in zip(a, c)), ("pushforward and offset changed nothing", a, c)
assert any(abs(x - z) > 1e-3 * abs(z) for x, z in zip(a, d)), ("pushes of 1-3 steps equal pushes of 1", a, d)
PY

# SP = 2 and DP = 2 x SP = 2 against the same 1-rank run. The SP runs sum the
# same terms in another order (cross-rank log-sum-exp, reductions over
# ranks), so they agree to fp32 rounding, far inside 1e-5.
if mpiexec -n 2 "$tessera" train out="$tmp/sp2" "${common[@]}" train.steps=4 mesh.val_rollout=5 "${push[@]}" parallel.sp=2 >"$tmp/sp2.log" 2>&1; then ok
else fail "sp=2: $(tail -2 "$tmp/sp2.log")"; fi
if mpiexec -n 4 "$tessera" train out="$tmp/dp2sp2" "${common[@]}" train.steps=4 mesh.val_rollout=5 "${push[@]}" parallel.dp=2 parallel.sp=2 \
  >"$tmp/dp2sp2.log" 2>&1; then ok
else fail "dp=2 x sp=2: $(tail -2 "$tmp/dp2sp2.log")"; fi
for run in sp2 dp2sp2; do
  if /usr/bin/python3 - "$tmp/dp1/tessera.jsonl" "$tmp/$run/tessera.jsonl" <<'PY'; then ok; else fail "$run: losses or halo bytes"; fi
import json, sys
def steps(p):
    return [e for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert len(a) == len(b) == 4, (a, b)
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) <= 1e-5 * abs(x["loss"]), (x["loss"], y["loss"])
    if not isinstance(x["val_loss"], str):
        assert abs(x["val_loss"] - y["val_loss"]) <= 1e-5 * abs(x["val_loss"]), (x["val_loss"], y["val_loss"])
        # the one-step validation skill sums partial errors over DP and SP ranks
        assert abs(x["val_skill"] - y["val_skill"]) <= 1e-5 * abs(x["val_skill"]), (x["val_skill"], y["val_skill"])
        # the validation rollout: SP ranks predict chunks and gather the state
        assert abs(x["val_rollout"] - y["val_rollout"]) <= 1e-5 * abs(x["val_rollout"]), (x["val_rollout"], y["val_rollout"])
    assert x["halo_bytes_max"] == 0, x  # one rank: no halo
    assert y["halo_bytes_min"] == y["halo_bytes_expected_min"] > 0, y
    assert y["halo_bytes_max"] == y["halo_bytes_expected_max"], y
PY
done

# forecast, a killed rollout resumed, and score
fc=(model.kind=mesh mesh.file="$h5" forecast.checkpoint="$tmp/c/checkpoint.h5")
"$tessera" forecast out="$tmp/f" "${fc[@]}" >"$tmp/f.log" 2>&1 && ok || fail "forecast: $(tail -2 "$tmp/f.log")"
"$tessera" forecast out="$tmp/k" "${fc[@]}" >"$tmp/k1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "step [3-9]/23" "$tmp/k1.log" 2>/dev/null && break; sleep 0.005; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
if [ -e "$tmp/k/rollout.nc" ]; then
  echo "note: the rollout finished before the kill; the resume path is not exercised this run"
else
  [ -e "$tmp/k/rollout.nc.part" ] && ok || fail "a killed rollout must leave rollout.nc.part"
  "$tessera" forecast out="$tmp/k" "${fc[@]}" >"$tmp/k2.log" 2>&1 && ok || fail "rollout resume: $(tail -2 "$tmp/k2.log")"
  grep -q "resuming" "$tmp/k2.log" && ok || fail "the rerun did not resume"
fi
# SIGUSR1 (the rollout driver the gridded forecast shares): the step in
# progress completes, rollout.nc.part stays, the exit is clean, and the rerun
# resumes to the same rollout as the uninterrupted one
"$tessera" forecast out="$tmp/u" "${fc[@]}" >"$tmp/u1.log" 2>&1 &
pid=$!
for i in $(seq 1 1000); do grep -q "step [3-9]/23" "$tmp/u1.log" 2>/dev/null && break; sleep 0.005; done
kill -USR1 $pid 2>/dev/null
wait $pid
rc=$?
if [ -e "$tmp/u/rollout.nc" ]; then
  echo "note: the rollout finished before SIGUSR1; the polite stop is not exercised this run"
else
  [ $rc = 0 ] && grep -q "stopped after step" "$tmp/u1.log" && [ -e "$tmp/u/rollout.nc.part" ] && ok \
    || fail "SIGUSR1: exit $rc, $(tail -2 "$tmp/u1.log")"
  "$tessera" forecast out="$tmp/u" "${fc[@]}" >"$tmp/u2.log" 2>&1 && grep -q "resuming" "$tmp/u2.log" && ok \
    || fail "resume after SIGUSR1: $(tail -2 "$tmp/u2.log")"
  if /usr/bin/python3 - "$tmp/f/rollout.nc" "$tmp/u/rollout.nc" <<'PY'; then ok; else fail "the resumed rollout differs"; fi
import sys
import numpy as np
import netCDF4
a, b = (netCDF4.Dataset(p) for p in sys.argv[1:3])
names = [n for n in a.variables if n.startswith("velocity")]
assert names, list(a.variables)
for n in names:
    x, y = np.asarray(a[n][:]), np.asarray(b[n][:])
    assert x.shape == y.shape and np.array_equal(x, y), n
PY
fi
"$tessera" score out="$tmp/f" model.kind=mesh mesh.file="$h5" >"$tmp/s.log" 2>&1 && ok || fail "score: $(tail -2 "$tmp/s.log")"

# forecast with SP = 2: the first step of the rollout, and every one-step
# prediction (each from the true state, so no error grows), within 1e-5
if mpiexec -n 2 "$tessera" forecast out="$tmp/fsp" "${fc[@]}" parallel.sp=2 >"$tmp/fsp.log" 2>&1; then ok
else fail "forecast sp=2: $(tail -2 "$tmp/fsp.log")"; fi
if /usr/bin/python3 - "$tmp/f/rollout.nc" "$tmp/fsp/rollout.nc" <<'PY'; then ok; else fail "forecast sp=2 differs from 1 rank"; fi
import sys
import netCDF4, numpy as np
a, b = netCDF4.Dataset(sys.argv[1]), netCDF4.Dataset(sys.argv[2])
rel = lambda x, y: np.linalg.norm(x - y) / np.linalg.norm(x)
for v in ("velocity_x", "velocity_y"):
    x, y = a[v][:].astype(np.float64), b[v][:].astype(np.float64)
    assert x.shape == y.shape and rel(x[0], y[0]) <= 1e-5, (v, rel(x[0], y[0]))
for v in ("velocity_x_1step", "velocity_y_1step"):
    x, y = a[v][:].astype(np.float64), b[v][:].astype(np.float64)
    assert x.shape == y.shape and rel(x, y) <= 1e-5, (v, rel(x, y))
PY

if /usr/bin/python3 - "$tmp" "$h5" <<'PY'; then ok; else fail "independent reader checks"; fi
import csv, sys
import h5py, netCDF4, numpy as np
tmp, h5 = sys.argv[1], sys.argv[2]
ds = netCDF4.Dataset(f"{tmp}/f/rollout.nc")
truth = h5py.File(h5)["2"]  # the first trajectory training did not use
assert ds.Conventions == "CF-1.8 UGRID-1.0" and ds["mesh2d"].cf_role == "mesh_topology"
pos = truth["mesh_pos"][...].reshape(-1, 2)
assert np.allclose(ds["mesh2d_node_x"][:], pos[:, 0]) and np.allclose(ds["mesh2d_node_y"][:], pos[:, 1])
assert np.array_equal(ds["mesh2d_face_nodes"][:], truth["cells"][...].reshape(-1, 3))
types = truth["node_type"][...].reshape(-1)
assert np.array_equal(ds["node_type"][:], types)
vel = truth["velocity"][...].astype(np.float64)  # (T, N, 2)
S = ds.dimensions["time"].size
assert S == vel.shape[0] - 1, (S, vel.shape)
roll = np.stack([ds["velocity_x"][:], ds["velocity_y"][:]], -1).astype(np.float64)
one = np.stack([ds["velocity_x_1step"][:], ds["velocity_y_1step"][:]], -1).astype(np.float64)
fixed = ~np.isin(types, [0, 5])
assert np.array_equal(roll[:, fixed], vel[1:, fixed].astype(np.float32).astype(np.float64)), "boundary nodes not from truth"
assert np.isfinite(roll).all() and np.isfinite(one).all()
# the kill-and-resume rollout equals the uninterrupted one
k = netCDF4.Dataset(f"{tmp}/k/rollout.nc")
for v in ("velocity_x", "velocity_y", "velocity_x_1step", "velocity_y_1step"):
    assert np.array_equal(k[v][:], ds[v][:]), v
# the scores, from their definitions
rmse = lambda e: np.sqrt(np.mean(e ** 2))
want = {("rmse_1step", "tessera"): rmse(one - vel[1:]), ("rmse_1step", "persistence"): rmse(vel[:-1] - vel[1:]),
        ("rmse_all_rollout", "tessera"): rmse(roll - vel[1:]), ("rmse_all_rollout", "persistence"): rmse(vel[0] - vel[1:]),
        ("rmse_rollout50", "tessera"): rmse(roll[:50] - vel[1:51]), ("rmse_rollout50", "persistence"): rmse(vel[0] - vel[1:51])}
got = {(r["metric"], r["system"]): float(r["value"]) for r in csv.DictReader(open(f"{tmp}/f/mesh_scorecard.csv"))}
assert set(got) == set(want), (got, want)
for key, w in want.items():
    assert abs(got[key] - w) <= 1e-6 * w, (key, got[key], w)
print("mesh checks passed:", {k: round(v, 5) for k, v in got.items()})
PY

# bad input: one error line, the exit code, no checkpoint left behind
bad() { local want=$1 dir=$2 re=$3; shift 3; "$@" >"$tmp/o" 2>"$tmp/err"; local rc=$?
  if [ $rc = "$want" ] && [ "$(grep -c '^tessera: ' "$tmp/err")" = 1 ] && grep -q "$re" "$tmp/err" && [ ! -e "$dir/checkpoint.h5" ]; then ok
  else fail "$*: exit $rc (want $want): $(cat "$tmp/err")"; fi; }
bad 2 "$tmp/x1" "mesh.file is empty" "$tessera" train out="$tmp/x1" model.kind=mesh train.steps=1
bad 1 "$tmp/x2" "nothing.h5" "$tessera" train out="$tmp/x2" "${common[@]}" mesh.file="$tmp/nothing.h5" train.steps=1
head -c 5000 "$h5" >"$tmp/cut.h5"
cp "$tmp/data/synth_mesh.json" "$tmp/cut.json"
bad 1 "$tmp/x3" "cut.h5" "$tessera" train out="$tmp/x3" "${common[@]}" mesh.file="$tmp/cut.h5" train.steps=1
bad 2 "$tmp/x4" "parallel.wp_x" mpiexec -n 2 "$tessera" train out="$tmp/x4" "${common[@]}" train.steps=1 parallel.wp_x=2
bad 2 "$tmp/x7" "parallel.sp" mpiexec -n 2 "$tessera" forecast out="$tmp/x7" "${fc[@]}" parallel.dp=2
bad 2 "$tmp/x5" "mesh.train_trajectories" "$tessera" train out="$tmp/x5" "${common[@]}" mesh.train_trajectories=9 train.steps=1
bad 1 "$tmp/x6" "nothing-swin.h5" "$tessera" forecast out="$tmp/x6" model.kind=mesh \
  mesh.file="$h5" forecast.checkpoint="$tmp/nothing-swin.h5"

finish
