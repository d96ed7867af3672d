#!/usr/bin/env bash
# The Slurm job scripts of jobs/ on a one-node cluster of this machine
# (jobs/local/start.sh):
# - jobs/train.sbatch (2 ranks, DP = 2) signalled mid-run with
#   `scancel --signal=USR1 --batch` checkpoints, requeues itself, restarts
#   with SLURM_RESTART_COUNT = 1, resumes, and ends with a checkpoint equal bit
#   for bit (every dataset: weights, EMA, Adam moments, statistics) to the
#   same training run straight through without Slurm, with the same losses;
# - jobs/forecast.sbatch on 2 ranks writes a forecast that python3-netCDF4
#   reads: dims number/time/step, every member, finite values;
# - jobs/forecast_array.sbatch writes one forecast per array index, each from
#   its own initial time;
# - one rank of jobs/train.sbatch killed with SIGKILL (a node failure, the
#   OOM killer): the job ends by itself, FAILED, within 60 s instead of
#   hanging on a collective, and its last checkpoint reads back whole.
# Needs root and Slurm + munge (scripts/deps.sh installs them); it fails with
# the reason when the cluster cannot start. It uses a cluster of its own (state
# folder in a temporary folder, free ports) and stops it at the end, unless
# TESSERA_SLURM_DIR names an existing cluster to use (left running).
# usage: test_slurm_requeue.sh path/to/tessera source-dir
set -u
tessera=$(realpath "$1")
src=$(realpath "$2")
. "$(dirname "$0")/../lib.sh"
t_start=$(date +%s)
PATH=$PATH:/usr/sbin:/sbin

own_cluster=1
if [ -n "${TESSERA_SLURM_DIR:-}" ]; then
  own_cluster=0
else
  export TESSERA_SLURM_DIR=$tmp/slurm
  # two free ports (slurmctld, slurmd), so a cluster already up on this machine is left alone
  port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  for p in $(seq 6817 10 6997); do
    if ! port_busy "$p" && ! port_busy $((p + 1)); then export TESSERA_SLURM_PORT=$p; break; fi
  done
fi
export SLURM_CONF=$TESSERA_SLURM_DIR/slurm.conf

cleanup() {
  if [ "$failed" != 0 ]; then # what the daemons said, for the failure report
    for f in "$TESSERA_SLURM_DIR/slurmctld.log" "$TESSERA_SLURM_DIR/slurmd.log"; do
      [ -e "$f" ] && { echo "--- last lines of $f"; tail -n 15 "$f"; }
    done
  fi
  [ "$own_cluster" = 1 ] && bash "$src/jobs/local/stop.sh" >/dev/null 2>&1
  if [ "${TESSERA_KEEP_TMP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT # in place of lib.sh's, which only removes $tmp
trap 'fail "interrupted"; exit 1' INT TERM

if ! out=$(bash "$src/jobs/local/start.sh" 2>&1); then
  echo "FAIL: cannot start the local Slurm cluster: $out"
  echo "(the job tests need root and Debian's slurmctld slurmd slurm-client munge: scripts/deps.sh installs them)"
  exit 1
fi

# Open MPI as root and oversubscription (lib.sh), one thread per rank in every
# run (the same thread count is what makes the runs bit-identical); sbatch
# passes the environment on to the jobs.
export OMP_NUM_THREADS=1
export TESSERA=$tessera
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
show_log() { echo "--- $1"; tail -n "${2:-20}" "$1" 2>/dev/null; }
# a job that can never start (more CPUs than the node has, ...) fails the test
# at once instead of waiting out every timeout
unschedulable() {
  case $(job_field "$1" Reason) in
    PartitionConfig | PartitionNodeLimit | PartitionTimeLimit | BadConstraints | ReqNodeNotAvail* | InvalidAccount)
      echo "job $1 cannot start: $(scontrol show job "$1" | grep -E 'Reason|NumCPUs|TRES')"
      return 0 ;;
  esac
  return 1
}

# data: 4 simulated days at 5.625 deg, 6-hourly
"$tessera" synth-era5 out="$tmp/data" synth.days=4 synth.spinup_days=0 >"$tmp/synth.log" 2>&1 \
  || { show_log "$tmp/synth.log"; echo "FAIL: synth-era5"; exit 1; }
data=(data.files="$tmp/data/*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface)
"$tessera" stats out="$tmp/stats" "${data[@]}" stats.residual_hours=6 >"$tmp/stats.log" 2>&1 \
  || { show_log "$tmp/stats.log"; echo "FAIL: stats"; exit 1; }
# enough steps (about 30 ms each) that the job is mid-run when signalled;
# checkpoint_every does not divide the stop step, so the resume starts from
# the signal's checkpoint
train=("${data[@]}" data.stats="$tmp/stats/stats.nc" train.step_hours=6 model.window=4 model.dim=32 model.heads=2
       model.hidden=64 model.depth=2 model.t_freq=8 train.batch=2 train.warmup=2 train.log_every=1
       train.checkpoint_every=50 train.steps=300 seed=11)

# the reference: the same layout (DP = 2), straight through, no Slurm
if mpirun -n 2 "$tessera" train out="$tmp/ref" "${train[@]}" parallel.dp=2 >"$tmp/ref.log" 2>&1; then ok
else show_log "$tmp/ref.log"; fail "reference training run"; fi

# the same run as a batch job, with the layout the script picks (DP = tasks)
sb=(--parsable --nodes=1 --ntasks-per-node=2 --cpus-per-task=1 --overcommit --time=10 --chdir="$tmp")
jobid=$(sbatch "${sb[@]}" --output="$tmp/train-%j.out" "$src/jobs/train.sbatch" out="$tmp/run" "${train[@]}" 2>&1)
if ! [[ $jobid =~ ^[0-9]+$ ]]; then
  fail "sbatch jobs/train.sbatch: $jobid"
  exit 1
fi
log=$tmp/train-$jobid.out
for _ in $(seq 1 600); do # up to 60 s until it has logged a few steps
  grep -q "step 10/300" "$log" 2>/dev/null && break
  case $(job_field "$jobid" JobState) in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  unschedulable "$jobid" && { fail "the training job cannot start"; exit 1; }
  sleep 0.1
done
if grep -q "step 10/300" "$log" 2>/dev/null && ! grep -q "step 300/300" "$log"; then
  ok
  scancel --signal=USR1 --batch "$jobid" || fail "scancel --signal=USR1 --batch $jobid"
else
  show_log "$log"
  fail "the training job did not reach step 10 (or had already finished): state $(job_field "$jobid" JobState)"
fi

# requeued: pending again with a restart counted; start it now instead of
# after its two-minute BeginTime. Not at once: slurmd revokes the first run's
# credential at the requeue time and refuses any credential of this job made
# in the same second ("Job credential revoked"), so wait a few seconds first.
requeued_at=0
for _ in $(seq 1 300); do
  state=$(job_field "$jobid" JobState)
  restarts=$(job_field "$jobid" Restarts)
  if [ "${restarts:-0}" -ge 1 ]; then
    requeued_at=$(date +%s)
    break
  fi
  case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL) break ;; esac
  sleep 0.2
done
[ "$requeued_at" != 0 ] && ok || { show_log "$log"; fail "the job was not requeued after SIGUSR1 (state $state)"; }

for _ in $(seq 1 900); do # up to 3 minutes for the restarted run
  state=$(job_field "$jobid" JobState)
  case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
  [ "$state" = PENDING ] && [ "$(date +%s)" -ge $((requeued_at + 3)) ] \
    && scontrol update JobId="$jobid" StartTime=now >/dev/null 2>&1
  sleep 0.2
done
if [ "$state" = COMPLETED ] && [ "$(job_field "$jobid" ExitCode)" = 0:0 ] && [ "$(job_field "$jobid" Restarts)" = 1 ]; then ok
else show_log "$log" 40; fail "train job $jobid: state $state, exit $(job_field "$jobid" ExitCode), restarts $(job_field "$jobid" Restarts)"; fi

# the log tells the whole story: a stop with a checkpoint, a requeue, a restart
# that saw SLURM_RESTART_COUNT=1, and a resume from the stop step
stop_step=$(sed -n 's/.*stopping at step \([0-9]*\) on signal.*/\1/p' "$log" | head -1)
resume_step=$(sed -n 's/.*resuming from .* at step \([0-9]*\).*/\1/p' "$log" | head -1)
if [ -n "$stop_step" ] && [ "$stop_step" -lt 300 ] && grep -q "SIGNAL USR1 received" "$log" \
   && grep -q "requeueing job $jobid" "$log" && grep -q "restart 1 (SLURM_RESTART_COUNT=1)" "$log" \
   && [ "$resume_step" = "$stop_step" ] && grep -q "training finished" "$log"; then
  ok
  echo "train job $jobid: stopped at step $stop_step on SIGUSR1, requeued, restarted, resumed at step $resume_step"
else
  show_log "$log" 40
  fail "the job log does not show stop ($stop_step) -> requeue -> restart 1 -> resume ($resume_step) -> finish"
fi

# bit for bit: every dataset of the two final checkpoints, and every loss
if /usr/bin/python3 - "$tmp/ref/checkpoint.h5" "$tmp/run/checkpoint.h5" "$tmp/ref/tessera.jsonl" \
   "$tmp/run/tessera.jsonl" <<'PY'; then ok; else fail "the requeued run differs from the uninterrupted one"; fi
import json, sys
import h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
def datasets(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    return out
da, db = datasets(a), datasets(b)
assert set(da) == set(db), sorted(set(da) ^ set(db))
for group in ("params", "ema", "adam_m", "adam_v"):
    assert any(n.startswith(group + "/") for n in da), f"no {group}/ datasets in the checkpoint"
for name in sorted(da):
    x, y = da[name][()], db[name][()]
    assert np.array_equal(x, y), f"{name} differs"
assert int(a.attrs["step"]) == int(b.attrs["step"]) == 300, (a.attrs["step"], b.attrs["step"])
def losses(p):
    out = {}
    for e in map(json.loads, open(p)):
        if e.get("event") == "train_step":
            out.setdefault(e["step"], []).append(e["loss"])
    return out
la, lb = losses(sys.argv[3]), losses(sys.argv[4])
assert set(lb) == set(range(1, 301)), "the job's log misses steps"
for s, vs in lb.items():  # bit-equal to the uninterrupted run at every step
    assert all(v == la[s][0] for v in vs), (s, la[s], vs)
print(f"checkpoints equal in all {len(da)} datasets; 300 losses equal")
PY

# an ensemble over 2 ranks (members over DP), launched with mpirun this time
fc=(forecast.checkpoint="$tmp/run/checkpoint.h5" data.files="$tmp/data/*.nc" forecast.members=4 forecast.leads=2
    forecast.levels=4 seed=5)
if TESSERA_LAUNCHER=mpirun timeout 180 sbatch "${sb[@]}" --wait --output="$tmp/forecast-%j.out" "$src/jobs/forecast.sbatch" \
     out="$tmp/fc" "${fc[@]}" forecast.inits=2020-01-02,2020-01-02T12 >"$tmp/fc.sbatch" 2>&1; then ok
else
  show_log "$tmp/forecast-$(head -1 "$tmp/fc.sbatch").out" 30
  fail "jobs/forecast.sbatch: $(cat "$tmp/fc.sbatch")"
fi
fclog=$tmp/forecast-$(head -1 "$tmp/fc.sbatch").out
grep -q "on 2 ranks" "$fclog" && grep -q "parallel.dp = 2" "$fclog" && ok \
  || { show_log "$fclog" 30; fail "the forecast did not run on 2 ranks with parallel.dp = 2"; }
if /usr/bin/python3 - "$tmp/fc/forecast.nc" <<'PY'; then ok; else fail "the 2-rank forecast file"; fi
import sys
import numpy as np, netCDF4
ds = netCDF4.Dataset(sys.argv[1])
for dim, n in (("number", 4), ("time", 2), ("step", 2)):
    assert dim in ds.dimensions and len(ds.dimensions[dim]) == n, (dim, ds.dimensions.get(dim))
assert list(ds["step"][:]) == [6, 12], ds["step"][:]
t2m = np.array(ds["t2m"][:], dtype=np.float64)
assert ds["t2m"].dimensions[:3] == ("number", "time", "step"), ds["t2m"].dimensions
assert np.isfinite(t2m).all(), "t2m has non-finite values"
z500 = np.array(ds["z"][:], dtype=np.float64)[:, :, :, list(ds["pressure_level"][:]).index(500)]
assert np.isfinite(z500).all(), "z500 has non-finite values"
# every member was computed (none left empty): members differ from each other
spread = t2m.std(axis=0)
assert (spread.reshape(spread.shape[0] * spread.shape[1], -1).mean(axis=1) > 0).all(), "members are identical"
print("forecast: number 4, time 2, step 2, finite, members distinct")
PY

# a job array over initial dates: one file per index, from its own date
printf '# initial times, one per array index\n2020-01-02\n\n2020-01-02T18\n' >"$tmp/inits.txt"
if timeout 180 sbatch "${sb[@]}" --ntasks-per-node=1 --array=0-1 --wait --output="$tmp/array-%A_%a.out" \
     "$src/jobs/forecast_array.sbatch" "$tmp/inits.txt" out="$tmp/arr" "${fc[@]}" forecast.members=2 \
     >"$tmp/arr.sbatch" 2>&1; then ok
else
  for f in "$tmp"/array-*.out; do show_log "$f" 10; done
  fail "jobs/forecast_array.sbatch: $(cat "$tmp/arr.sbatch")"
fi
if /usr/bin/python3 - "$tmp/arr" <<'PY'; then ok; else fail "the array's forecast files"; fi
import sys
import numpy as np, netCDF4
for init in ("2020-01-02", "2020-01-02T18"):
    ds = netCDF4.Dataset(f"{sys.argv[1]}/forecast-{init}.nc")
    t = netCDF4.num2date(ds["time"][:], ds["time"].units)
    want = init if "T" in init else init + "T00"
    assert len(t) == 1 and t[0].strftime("%Y-%m-%dT%H") == want, (init, t)
    assert len(ds.dimensions["number"]) == 2 and np.isfinite(np.array(ds["t2m"][:], dtype=float)).all()
print("array: forecast-2020-01-02.nc, forecast-2020-01-02T18.nc")
PY

# one rank of a training job killed: the launcher (srun --kill-on-bad-exit,
# or mpirun) must end the job rather than leave the other rank waiting in a
# collective until the time limit. Under srun this takes Slurm's KillWait
# (30 s here): srun sends the other rank SIGTERM, whose polite stop waits for
# the step in progress (blocked on the dead rank), then SIGKILL.
jobid=$(sbatch "${sb[@]}" --output="$tmp/kill-%j.out" "$src/jobs/train.sbatch" out="$tmp/kill" "${train[@]}" \
  train.steps=100000 2>&1)
log=$tmp/kill-$jobid.out
victim=
for _ in $(seq 1 600); do # up to 60 s until a checkpoint is written and rank 1 is found
  if grep -q "checkpoint of step" "$log" 2>/dev/null; then
    for pid in $(pgrep -f "tessera train .*out=$tmp/kill "); do
      env=$(tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null)
      if echo "$env" | grep -qx "SLURM_JOB_ID=$jobid" &&
         echo "$env" | grep -Eqx "SLURM_PROCID=1|OMPI_COMM_WORLD_RANK=1|PMIX_RANK=1"; then victim=$pid; break; fi
    done
    [ -n "$victim" ] && break
  fi
  unschedulable "$jobid" && break
  sleep 0.1
done
if [ -n "$victim" ]; then
  t0=$(date +%s)
  kill -9 "$victim"
  for _ in $(seq 1 600); do
    state=$(job_field "$jobid" JobState)
    case $state in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY) break ;; esac
    sleep 0.1
  done
  secs=$(($(date +%s) - t0))
  echo "killed rank 1 (pid $victim) of job $jobid: the job ended $state after ${secs} s"
  [ "$state" = FAILED ] && [ "$secs" -le 60 ] && ok || { show_log "$log" 20; fail "job $jobid after a rank's death: $state after ${secs} s"; }
  if /usr/bin/python3 - "$tmp/kill/checkpoint.h5" <<'PY'; then ok; else fail "the last checkpoint after the kill"; fi
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    for group in ("params", "ema", "adam_m", "adam_v"):
        for d in f[group].values():
            d[...]
    print("checkpoint of step", int(f.attrs["step"]), "whole after the kill")
PY
else
  show_log "$log" 20
  fail "no rank 1 of job $jobid found to kill (state $(job_field "$jobid" JobState))"
  scancel "$jobid" 2>/dev/null
fi

echo "test_slurm_requeue: $(($(date +%s) - t_start)) s"
# the reference run, step 10 reached, the requeue, the completed job, its log,
# bit for bit; the forecast job, its 2 ranks, its file; the array, its files;
# the killed rank's job and its checkpoint
finish 13
