#!/usr/bin/env bash
# tessera train end to end on small ERA5-format files:
# - the same run twice gives the same bits;
# - 2N steps straight equal N steps + resume + N steps in every loss value
#   and every weight (bit for bit);
# - 1 rank and DP = 2 ranks: the same losses within 1e-5 relative;
# - DP = 2 x WP = 2 and SP = 2: the validation loss and the validation
#   forecast's skill of every variable equal one rank's within 1e-5;
# - SP = 2 and 4, DP = 2 x SP = 2, WP 1 x 2 x SP 2: losses and weights
#   equal one rank's within 1e-5, all-to-all bytes equal the analytic count;
# - train.micro_batches 2 and 4 (and with DP 2): losses, validation and
#   weights equal the whole batch's within 1e-5;
# - SIGUSR1 mid-run: a checkpoint, a clean exit, and a resume that ends equal
#   to the uninterrupted run;
# - bad layouts and keys: one line, exit 2.
# usage: test_train.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

# data: the era5 test program writes small CDS-layout files (13 x 24, 4 times, 6-hourly)
mkdir -p "$tmp/data"
"$(dirname "$tessera")/tests/test_era5" --write "$tmp/data" >/dev/null 2>&1 || { echo "cannot write test data"; exit 1; }
common=(data.files="$tmp/data/cds_*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface
        train.step_hours=6 model.window=4 model.dim=16 model.heads=2 model.hidden=24 model.depth=2 model.t_freq=8
        train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 seed=11)
"$tessera" stats out="$tmp/stats" data.files="$tmp/data/cds_*.nc" data.variables=z500,t850,t2m \
  data.forcings=lsm,z_surface stats.residual_hours=6 >/dev/null 2>&1 || fail "stats"
common+=(data.stats="$tmp/stats/stats.nc")

run() { # run DIR steps [extra...]
  local dir=$1 steps=$2
  shift 2
  "$tessera" train out="$dir" "${common[@]}" train.steps="$steps" "$@" >"$dir.log" 2>&1
}
losses() { /usr/bin/python3 -c 'import json,sys; [print(e["step"], repr(e["loss"])) for e in map(json.loads, open(sys.argv[1])) if e["event"]=="train_step"]' "$1/tessera.jsonl"; }
same_weights() { # exact equality of every dataset of two checkpoints
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
for g in ("params", "ema", "adam_m", "adam_v"):
    for k in a[g]:
        if not np.array_equal(a[g][k][...], b[g][k][...]):
            sys.exit(f"{g}/{k} differs")
assert a.attrs["step"] == b.attrs["step"]
PY
}

run "$tmp/a" 8 && ok || fail "train 8 steps: $(tail -2 "$tmp/a.log")"
run "$tmp/b" 8 && ok || fail "train again"
if same_weights "$tmp/a/checkpoint.h5" "$tmp/b/checkpoint.h5" && [ "$(losses "$tmp/a")" = "$(losses "$tmp/b")" ]; then ok
else fail "the same run twice differs"; fi

# SIGUSR1 mid-run, then resume: equal to the straight run in every loss and
# weight. The model is larger here so that the run is still going when the
# signal arrives.
big=(model.dim=48 model.hidden=96 model.depth=4 train.steps=30 train.checkpoint_every=10)
"$tessera" train out="$tmp/c" "${common[@]}" "${big[@]}" >"$tmp/c.log" 2>&1 && ok || fail "straight run"
"$tessera" train out="$tmp/e" "${common[@]}" "${big[@]}" >"$tmp/e1.log" 2>&1 &
pid=$!
for i in $(seq 1 400); do grep -q "step 3/30" "$tmp/e1.log" 2>/dev/null && break; sleep 0.01; done
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
assert set(a) == set(range(1, 31)), sorted(a)
assert set(b) >= {1, 30}, sorted(b)
for s, vs in b.items():
    for v in vs:
        assert a[s][0] == v, (s, a[s], v)
PY

# DP = 2 against 1 rank: the same global batch, the same losses within 1e-5
if mpiexec -n 2 "$tessera" train out="$tmp/dp2" "${common[@]}" train.steps=3 parallel.dp=2 >"$tmp/dp2.log" 2>&1; then ok
else fail "dp=2: $(tail -2 "$tmp/dp2.log")"; fi
run "$tmp/dp1" 3 && ok || fail "dp=1"
if /usr/bin/python3 - "$tmp/dp1/tessera.jsonl" "$tmp/dp2/tessera.jsonl" <<'PY'; then ok; else fail "dp=2 losses differ"; fi
import json, sys
def losses(p):
    return [e["loss"] for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) == 3, (a, b)
for x, y in zip(a, b):
    assert abs(x - y) <= 1e-5 * abs(x), (x, y)
print("dp1", a, "dp2", b)
PY

# WP (and DP x WP) against 1 rank, window 2 so the 12 x 24 grid splits
wp=(model.window=2 train.steps=3)
run "$tmp/w1" 3 model.window=2 && ok || fail "window-2 run on 1 rank"
for layout in "2 parallel.wp_x=2" "2 parallel.wp_y=2" "4 parallel.wp_y=2 parallel.wp_x=2" "4 parallel.dp=2 parallel.wp_x=2"; do
  set -- $layout
  n=$1
  shift
  name=$(echo "$*" | tr ' =.' '___')
  if mpiexec -n "$n" "$tessera" train out="$tmp/$name" "${common[@]}" "${wp[@]}" "$@" >"$tmp/$name.log" 2>&1; then ok
  else fail "$*: $(tail -2 "$tmp/$name.log")"; fi
  if /usr/bin/python3 - "$tmp/w1/tessera.jsonl" "$tmp/$name/tessera.jsonl" "$*" <<'PY'; then ok; else fail "$* against 1 rank"; fi
import json, sys
def steps(p):
    return [e for e in map(json.loads, open(p)) if e["event"] == "train_step"]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert len(a) == len(b) == 3
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) <= 1e-5 * abs(x["loss"]), (x["loss"], y["loss"])
last = b[-1]
# every rank sent exactly the analytic strip volume, and WP ranks sent some
assert last["wp_bytes_min"] == last["wp_bytes_expected_min"] and last["wp_bytes_max"] == last["wp_bytes_expected_max"], last
assert last["wp_bytes_min"] > 0, last
print(sys.argv[3], "losses", [y["loss"] for y in b], "bytes per rank", last["wp_bytes_max"])
PY
done

# SP (Ulysses: each rank a band of rows, attention over heads / sp heads)
# and DP x SP against 1 rank: the same losses within 1e-5 at every step, the
# same weights after 3 steps within 1e-5 norm-wise, and every rank sent
# exactly the analytic all-to-all volume: per attention layer and pass
# (forward or backward) 4 T C (sp - 1) / sp floats, T = this rank's tokens
sp=(model.heads=4 train.steps=3)
run "$tmp/s1" 3 model.heads=4 && ok || fail "4-head run on 1 rank"
for layout in "2 parallel.sp=2" "4 parallel.sp=4" "4 parallel.dp=2 parallel.sp=2" "4 parallel.wp_x=2 parallel.sp=2"; do
  set -- $layout
  n=$1
  shift
  name=$(echo "$*" | tr ' =.' '___')
  if mpiexec -n "$n" "$tessera" train out="$tmp/$name" "${common[@]}" "${sp[@]}" "$@" >"$tmp/$name.log" 2>&1; then ok
  else fail "$*: $(tail -2 "$tmp/$name.log")"; fi
  if /usr/bin/python3 - "$tmp/s1" "$tmp/$name" "$*" <<'PY'; then ok; else fail "$* against 1 rank"; fi
import json, sys
import h5py
import numpy as np
def steps(d):
    return [e for e in map(json.loads, open(d + "/tessera.jsonl")) if e["event"] == "train_step"]
a, b = steps(sys.argv[1]), steps(sys.argv[2])
assert len(a) == len(b) == 3
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) <= 1e-5 * abs(x["loss"]), (x["loss"], y["loss"])
pa, pb = h5py.File(sys.argv[1] + "/checkpoint.h5")["params"], h5py.File(sys.argv[2] + "/checkpoint.h5")["params"]
assert set(pa) == set(pb) and len(pa) > 0
for k in pa:
    u, v = pa[k][...].astype(np.float64), pb[k][...].astype(np.float64)
    assert np.linalg.norm(u - v) <= 1e-5 * max(np.linalg.norm(u), 1e-30), k
lay = dict(kv.split("=") for kv in sys.argv[3].split())
S, dp, wp = int(lay["parallel.sp"]), int(lay.get("parallel.dp", 1)), int(lay.get("parallel.wp_x", 1))
B, H, W, C, depth = 2 // dp, 12, 24, 16, 2  # local batch, grid rows (south pole dropped), columns, dim, blocks
T = B * H * W // (wp * S)
per_step = depth * 2 * 4 * T * C * (S - 1) // S * 4  # layers x (forward, backward) x floats x bytes
last = b[-1]
assert last["sp_bytes_min"] == last["sp_bytes_max"] == 3 * per_step, (last, per_step)
assert last["sp_bytes_expected_max"] == 3 * per_step, last
print(sys.argv[3], "losses", [y["loss"] for y in b], "all-to-all bytes per rank and step", per_step)
PY
done

# two runs of one global batch agree: the same losses and validation
# figures at every step within 1e-5, and the same weights (used below)
cat >"$tmp/same_run.py" <<'PY'
import json, sys
import h5py
import numpy as np
def events(d):
    return [e for e in map(json.loads, open(d + "/tessera.jsonl")) if e["event"] in ("train_step", "validation")]
a, b = events(sys.argv[1]), events(sys.argv[2])
assert len(a) == len(b) == 4 and sum("val_skill" in e for e in a) == 2, a
for x, y in zip(a, b):
    for k in [k for k in x if k == "loss" or (k.startswith("val_") and isinstance(x[k], float) and x[k])]:
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
pa, pb = h5py.File(sys.argv[1] + "/checkpoint.h5")["params"], h5py.File(sys.argv[2] + "/checkpoint.h5")["params"]
for k in pa:
    u, v = pa[k][...].astype(np.float64), pb[k][...].astype(np.float64)
    assert np.linalg.norm(u - v) <= 1e-5 * max(np.linalg.norm(u), 1e-30), k
PY

# micro-batches (gradient accumulation) against the whole local batch at
# once: the same losses, validation figures and weights within 1e-5, on one
# rank and on DP 2
# run_layout PREFIX KEY=VALUE... -- NP LAYOUT-KEY...: 3 steps of the common
# run with the keys on NP ranks, into $tmp/$name (PREFIX and the layout
# keys); sets $name and $lk (the layout keys) for the caller
run_layout() {
  local prefix=$1 keys=()
  shift
  while [ "$1" != -- ]; do keys+=("$1"); shift; done
  shift
  local n=$1
  shift
  lk="$*"
  name=${prefix}_$(echo "$lk" | tr ' =.' '___')
  if mpiexec -n "$n" "$tessera" train out="$tmp/$name" "${common[@]}" train.steps=3 "${keys[@]}" "$@" \
    >"$tmp/$name.log" 2>&1; then ok
  else fail "$*: $(tail -2 "$tmp/$name.log")"; fi
}
mb=(train.batch=4 train.val_start=2020-01-01T12 train.val_every=3 train.val_samples=3 train.val_levels=2
    train.val_members=2)
run "$tmp/mb1" 3 "${mb[@]}" && ok || fail "batch-4 run"
for layout in "1 train.micro_batches=2" "1 train.micro_batches=4" "2 parallel.dp=2 train.micro_batches=2"; do
  run_layout mb "${mb[@]}" -- $layout
  if /usr/bin/python3 "$tmp/same_run.py" "$tmp/mb1" "$tmp/$name"; then ok; else fail "$lk against the whole batch"; fi
done

# pipeline stages (parallel.pp, model.shift=stage: one shift per stage of 2
# blocks): 1F1B over 2 micro-batches, alone and with DP, WP and SP, on up
# to 8 ranks, against 1 rank with the same micro-batches: the same losses,
# validation loss and validation forecast skill (run through the pipeline)
# within 1e-5, the same weights after 3 steps, and every rank sent the
# analytic stage-to-stage volume in training: per micro-batch, its
# stage's output forward and its input gradient backward, T d floats each
pp=(train.batch=4 train.micro_batches=2 model.depth=4 model.heads=4 model.shift=stage model.shift_every=2
    train.val_start=2020-01-01T12 train.val_every=3 train.val_samples=3 train.val_levels=2 train.val_members=2)
run "$tmp/pp1" 3 "${pp[@]}" && ok || fail "pipeline reference on 1 rank"
for layout in "2 parallel.pp=2" "4 parallel.dp=2 parallel.pp=2" "4 parallel.wp_x=2 parallel.pp=2" \
  "4 parallel.sp=2 parallel.pp=2" "8 parallel.wp_x=2 parallel.sp=2 parallel.pp=2" "4 parallel.pp=4 train.micro_batches=4"; do
  run_layout pp "${pp[@]}" -- $layout
  ref=$tmp/pp1
  if [ "$lk" = "parallel.pp=4 train.micro_batches=4" ]; then
    run "$tmp/pp1m4" 3 "${pp[@]}" train.micro_batches=4 || fail "4 micro-batches on 1 rank"
    ref=$tmp/pp1m4
  fi
  if /usr/bin/python3 "$tmp/same_run.py" "$ref" "$tmp/$name"; then ok; else fail "$lk against 1 rank"; fi
  if /usr/bin/python3 - "$tmp/$name" "$lk" <<'PY'; then ok; else fail "$lk: stage-to-stage bytes"; fi
import json, sys
b = [e for e in map(json.loads, open(sys.argv[1] + "/tessera.jsonl")) if e["event"] == "train_step"]
lay = dict(kv.split("=") for kv in sys.argv[2].split())
P, dp, wp, S = (int(lay.get(k, 1)) for k in ("parallel.pp", "parallel.dp", "parallel.wp_x", "parallel.sp"))
M = int(lay.get("train.micro_batches", 2))
T = (4 // dp // M) * 12 * 24 // (wp * S)  # a micro-batch's tokens on one rank (12 rows: south pole dropped)
one = 3 * M * T * 16 * 4  # 3 steps x micro-batches x T d floats x 4 bytes, one direction
last = b[-1]
assert last["pp_bytes_min"] == one and last["pp_bytes_max"] == (2 * one if P > 2 else one), (last, one)
print(sys.argv[2], "losses", [y["loss"] for y in b], "stage-to-stage bytes per rank", one)
PY
done

# validation (loss and the one-step validation forecast's skill, 3 samples
# over a batch of 2, so one is padding) on DP 2 x WP 2 and on SP 2 against
# 1 rank
val=(model.window=2 train.val_start=2020-01-01T12 train.val_every=2 train.val_samples=3 train.val_levels=2
     train.val_members=2)
run "$tmp/v1" 2 "${val[@]}" && ok || fail "validation run on 1 rank"
for layout in "4 parallel.dp=2 parallel.wp_x=2" "2 parallel.sp=2"; do
  set -- $layout
  n=$1
  shift
  name=v_$(echo "$*" | tr ' =.' '___')
  if mpiexec -n "$n" "$tessera" train out="$tmp/$name" "${common[@]}" train.steps=2 "${val[@]}" "$@" \
    >"$tmp/$name.log" 2>&1; then ok
  else fail "validation run on $*: $(tail -2 "$tmp/$name.log")"; fi
  if /usr/bin/python3 - "$tmp/v1/tessera.jsonl" "$tmp/$name/tessera.jsonl" <<'PY'; then ok; else fail "validation differs on $*"; fi
import json, sys
def vals(p):
    return [e for e in map(json.loads, open(p)) if e["event"] in ("validation", "train_step") and "val_skill" in e]
a, b = vals(sys.argv[1]), vals(sys.argv[2])
assert len(a) == len(b) == 2, (a, b)  # step 0 and step 2
for x, y in zip(a, b):
    for k in [k for k in x if k.startswith("val_")]:
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
print("validation", [(x["val_loss"], x["val_skill"]) for x in b])
PY
done

# refused layouts and keys: one line, exit 2
# (mpiexec adds its own abort banner; tessera's own lines are counted)
expect2() { "$@" >"$tmp/o" 2>"$tmp/err"; local rc=$?
  if [ $rc = 2 ] && [ "$(grep -c '^tessera: ' "$tmp/err")" = 1 ]; then ok; else fail "$*: exit $rc, $(cat "$tmp/err")"; fi; }
# a pipeline needs at least pp micro-batches, and stages of whole blocks
expect2 mpiexec -n 2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 parallel.pp=2
expect2 mpiexec -n 2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 parallel.pp=2 train.micro_batches=2 \
  model.depth=3
expect2 mpiexec -n 2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 parallel.sp=2 model.heads=1
expect2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 train.batch=4 train.micro_batches=3
# blocks of 6 rows do not split into 4 bands
expect2 mpiexec -n 8 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 parallel.sp=4 model.heads=4 \
  parallel.wp_y=2 model.window=2
expect2 mpiexec -n 2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 parallel.dp=2 train.batch=3
expect2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 model.heads=3
expect2 "$tessera" train out="$tmp/x" "${common[@]}" train.steps=1 train.var_weights=q900=1
[ ! -e "$tmp/x/checkpoint.h5" ] && ok || fail "a refused run left a checkpoint"

finish
