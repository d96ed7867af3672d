#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine, for the job tests and for
# trying the batch scripts of jobs/ before a real cluster.
#
#   jobs/local/start.sh          # then: export SLURM_CONF=/tmp/tessera-slurm/slurm.conf
#   jobs/local/stop.sh
#
# Everything lives in one state folder ($TESSERA_SLURM_DIR, default
# /tmp/tessera-slurm): a fresh munge key, slurm.conf, the daemons' sockets,
# pid files, spool folders and logs (munged.log, slurmctld.log, slurmd.log).
# Nothing under /etc is touched, so the clients need SLURM_CONF pointing at
# the folder's slurm.conf (this script prints the line). The node gets the
# machine's cores (nproc) and memory (/proc/meminfo, less 1 GiB); no cgroups
# (proctrack/linuxproc, task/none), so it runs in containers without systemd.
# Ports: $TESSERA_SLURM_PORT (slurmctld, default 6817) and the next one (slurmd).
#
# Needs root (slurmd starts jobs as their owner) and Debian's slurmctld,
# slurmd, slurm-client and munge (scripts/deps.sh installs them). Starting a
# cluster that is already up only waits for its node to be idle.
set -euo pipefail

dir=${TESSERA_SLURM_DIR:-/tmp/tessera-slurm}
port=${TESSERA_SLURM_PORT:-6817}
die() { echo "jobs/local/start.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root: slurmd starts jobs as their owner (run it with sudo, or use a real cluster)"
for exe in munged slurmctld slurmd sinfo scontrol sbatch; do
  command -v "$exe" >/dev/null || PATH=$PATH:/usr/sbin:/sbin
  command -v "$exe" >/dev/null \
    || die "'$exe' not found: install Debian's slurmctld slurmd slurm-client munge (scripts/deps.sh does)"
done
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac

export SLURM_CONF=$dir/slurm.conf
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -1; }

wait_idle() { # wait until the node takes jobs
  local st=""
  for _ in $(seq 1 120); do
    st=$(node_state)
    case $st in
      idle | mix | alloc) return 0 ;;
      drain* | down* | fail*)
        # ReturnToService=2 brings it back on registration; a node drained by an
        # earlier run (same folder) needs a nudge
        scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  echo "jobs/local/start.sh: the node did not become idle within 60 s (state '${st:-unknown}'); the last log lines:" >&2
  tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null || true
  exit 1
}

node=$(hostname -s)
if alive "$dir/munged.pid" && alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid"; then
  wait_idle
  echo "jobs/local/start.sh: the cluster in $dir is already running; export SLURM_CONF=$SLURM_CONF"
  exit 0
fi
# half-started (a daemon died): stop what is left and start afresh
[ -e "$dir/slurm.conf" ] && "$(dirname "$0")/stop.sh" >/dev/null 2>&1 || true

mkdir -p "$dir/munge" "$dir/ctld" "$dir/spool/$(hostname -s)"
chmod 755 "$dir" "$dir/munge" # clients of other users reach the socket; the key stays 400

# munge: a key of our own, and a socket in the state folder
if [ ! -s "$dir/munge/munge.key" ]; then
  if command -v mungekey >/dev/null; then mungekey --create --keyfile="$dir/munge/munge.key" --bits=1024
  else dd if=/dev/urandom of="$dir/munge/munge.key" bs=1 count=1024 status=none; fi
fi
chmod 400 "$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/munge.seed" --force \
  || die "munged did not start: see $dir/munged.log"
for _ in $(seq 1 50); do [ -S "$dir/munge/munge.socket" ] && break; sleep 0.1; done
munge -n --socket="$dir/munge/munge.socket" | unmunge --socket="$dir/munge/munge.socket" >/dev/null \
  || die "munge does not answer on $dir/munge/munge.socket: see $dir/munged.log"

# the node: every core this process may use (nproc without OMP_NUM_THREADS,
# which GNU nproc obeys), the memory less 1 GiB for the system
cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
mem=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; print (m < 512 ? 512 : m) }' /proc/meminfo)
cat >"$SLURM_CONF" <<EOF
# one-node cluster written by jobs/local/start.sh; state, logs and sockets in $dir
ClusterName=tessera
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/ctld
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups: works in containers and on machines without systemd
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=600
InactiveLimit=0
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$node Default=YES MaxTime=INFINITE State=UP DefMemPerCPU=$((mem / cpus)) OverSubscribe=NO
EOF

# -i: ignore any old state of the folder (jobs of a previous run)
slurmctld -i -f "$SLURM_CONF" || die "slurmctld did not start: see $dir/slurmctld.log"
for _ in $(seq 1 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.1; done
scontrol ping >/dev/null 2>&1 || die "slurmctld does not answer: see $dir/slurmctld.log"
slurmd -f "$SLURM_CONF" || die "slurmd did not start: see $dir/slurmd.log"
wait_idle
echo "jobs/local/start.sh: one-node cluster up ($node: $cpus CPUs, $mem MB) in $dir"
echo "export SLURM_CONF=$SLURM_CONF"
