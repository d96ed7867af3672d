#!/usr/bin/env bash
# Stop the one-node cluster of jobs/local/start.sh: cancel its jobs, stop
# slurmd, slurmctld and munged by their pid files in the state folder
# ($TESSERA_SLURM_DIR, default /tmp/tessera-slurm). The folder and its logs
# stay (jobs/local/stop.sh --purge removes it). Stopping a cluster that is not
# running is fine.
set -uo pipefail

dir=${TESSERA_SLURM_DIR:-/tmp/tessera-slurm}
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
PATH=$PATH:/usr/sbin:/sbin
export SLURM_CONF=$dir/slurm.conf

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_daemon() { # pidfile name
  local pidfile=$1 name=$2 pid
  alive "$pidfile" || { rm -f "$pidfile"; return 0; }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "jobs/local/stop.sh: $name ($pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

if alive "$dir/slurmctld.pid"; then
  # the jobs first, so no task outlives its slurmd
  scancel --quiet --full --signal=KILL --state=RUNNING --user="$(id -un)" 2>/dev/null
  scancel --quiet --user="$(id -un)" 2>/dev/null
  for _ in $(seq 1 50); do [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop_daemon "$dir/slurmd.pid" slurmd
stop_daemon "$dir/slurmctld.pid" slurmctld
stop_daemon "$dir/munged.pid" munged
[ "${1:-}" = --purge ] && rm -rf "$dir"
echo "jobs/local/stop.sh: stopped the cluster of $dir"
