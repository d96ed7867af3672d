#!/usr/bin/env bash
# Scaling study of tessera train: sweeps rank layouts, collects throughput
# from each run's JSON log into one CSV, computes weak and strong scaling
# efficiency, and plots it when matplotlib is there.
#
#   jobs/scaling.sh [--out DIR] [--max-ranks N] [--steps N] [--batch B] [key.sub=value ...]
#
# Runs inside a Slurm allocation (jobs/scaling.sbatch; steps launched with
# srun -n R, or mpirun -n R, picked as in jobs/train.sbatch) or on a
# workstation (mpirun -n R). For R = 1, 2, 4, ... up to --max-ranks (default
# the job's tasks, else nproc):
#   weak    parallel.dp=R,            train.batch = B * R   (B per rank: constant work per rank)
#   dp      parallel.dp=R,            train.batch = B * P (the same global batch on more ranks)
#   wp      parallel.wp_x=R,          train.batch = B * P (one replica's windows split over ranks)
#   wp2d    parallel.wp_y=2, wp_x=R/2 (R >= 4), train.batch = B * P
#   sp      parallel.sp=R,            train.batch = B * P (one replica's rows split into bands, Ulysses)
#   wpsp    parallel.wp_x=2, sp=R/2 (R >= 4), train.batch = B * P
#   pp      parallel.pp=R, train.micro_batches=P, train.batch = B * P (stages of
#           whole blocks, 1F1B; R above model.depth is refused and kept as a row)
# where P is the largest of these R.
# Each run trains --steps steps (default 20) on the same data; samples/s and
# GFLOP/s are the medians over the steps after the first 3 (start-up). The
# efficiency of a row is (samples/s at R) / (R * samples/s at 1 rank of the
# same study): for weak scaling that is t(1)/t(R) per step, for the strong
# ones (dp, wp, wp2d, sp, wpsp, pp; baseline: one rank, the whole batch)
# t(1)/(R t(R)). A layout tessera refuses (a grid that does not split into
# whole windows or bands per rank, heads that do not divide over sp, a batch
# that does not divide) is kept as a row with its status.
#
# Without a data.files override the sweep first writes 8 synthetic days at
# 5.625 deg (tessera synth-era5) and their statistics into OUT/data. Overrides
# after the options go to every run (model shape, data, device=cuda, ...);
# the default model is small enough for CPUs.
#
# Writes OUT/scaling.csv with the columns
#   study,layout,ranks,dp,wp_y,wp_x,sp,pp,batch,samples_per_s,tokens_per_s,gflops,
#   bytes_per_rank_step,efficiency,status
# (tokens_per_s: samples/s x grid points; bytes_per_rank_step: the most any
# rank sent a step, window strips plus sequence all-to-alls, the analytic
# count the tests hold true)
# plus OUT/scaling.png (matplotlib in /usr/bin/python3 or python3; skipped
# with a message otherwise), OUT/bench (the one-rank SGEMM ceiling of
# `tessera bench`, printed beside the table) and each run's folder
# OUT/runs/<study>-<layout>.
set -uo pipefail

say() { echo "scaling.sh: $*"; }
die() { echo "scaling.sh: error: $*" >&2; exit 1; }

out=scaling${SLURM_JOB_ID:+-$SLURM_JOB_ID}
max=${SLURM_NTASKS:-$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)}
steps=20
batch=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --max-ranks) max=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --help | -h) sed -n '2,/^set -uo/p' "$0" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
    --*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
[ "$steps" -ge 5 ] || die "--steps $steps: at least 5 (the first 3 are start-up)"
mkdir -p "$out/runs" || die "cannot create $out"
out=$(cd "$out" && pwd)

tessera=${TESSERA:-$(command -v tessera || echo "${SLURM_SUBMIT_DIR:-$PWD}/build/tessera")}
[ -x "$tessera" ] || die "no tessera binary: set TESSERA=/path/to/tessera or put tessera on PATH"
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export SRUN_CPUS_PER_TASK=$SLURM_CPUS_PER_TASK

launcher=${TESSERA_LAUNCHER:-auto}
if [ "$launcher" = auto ]; then
  if [ -z "${SLURM_JOB_ID:-}" ]; then launcher=mpirun
  else
    mpidefault=$(scontrol show config 2>/dev/null | awk '$1 == "MpiDefault" { print $3 }')
    if [ -n "$mpidefault" ] && [ "$mpidefault" != none ]; then launcher=srun
    elif srun --mpi=list 2>&1 | grep -qw pmix; then launcher=srun-pmix
    else launcher=mpirun; fi
  fi
fi
# shellcheck disable=SC2206
extra=(${TESSERA_LAUNCHER_FLAGS:-})
launch() { # ranks command...
  local n=$1
  shift
  case $launcher in
    srun) srun -n "$n" --kill-on-bad-exit=1 "${extra[@]}" "$@" ;;
    srun-pmix) srun --mpi=pmix -n "$n" --kill-on-bad-exit=1 "${extra[@]}" "$@" ;;
    mpirun) mpirun -n "$n" "${extra[@]}" "$@" ;;
    *) die "TESSERA_LAUNCHER=$launcher: use auto, srun, srun-pmix or mpirun" ;;
  esac
}

# the data: the user's, or 8 synthetic days
user=("$@")
common=(model.window=4 model.dim=64 model.heads=4 model.hidden=128 model.depth=2 model.t_freq=16
        train.step_hours=6 train.warmup=2 train.log_every=1 train.checkpoint_every=1000000 seed=1)
if ! printf '%s\n' "${user[@]}" | grep -q '^data\.files='; then
  data=(data.files="$out/data/*.nc" data.variables=z500,t850,t2m,u10,v10 data.forcings=lsm,z_surface)
  if [ ! -s "$out/data/stats.nc" ]; then
    say "writing 8 synthetic days and their statistics to $out/data"
    "$tessera" synth-era5 out="$out/data" synth.days=8 synth.spinup_days=10 >"$out/data.log" 2>&1 \
      || die "tessera synth-era5 failed: see $out/data.log"
    "$tessera" stats out="$out/data" "${data[@]}" stats.residual_hours=6 >>"$out/data.log" 2>&1 \
      || die "tessera stats failed: see $out/data.log"
  fi
  common+=("${data[@]}" data.stats="$out/data/stats.nc")
fi
common+=("${user[@]}" train.steps="$steps")

# the machine's ceiling, one rank, for the summary
"$tessera" bench out="$out/bench" bench.ops=qkv_gemm bench.depth=0 >"$out/bench.log" 2>&1 \
  || say "tessera bench failed (see $out/bench.log); no ceiling in the summary"

ranks=()
for ((r = 1; r <= max; r *= 2)); do ranks+=("$r"); done
csv=$out/scaling.csv
echo "study,layout,ranks,dp,wp_y,wp_x,sp,pp,batch,samples_per_s,tokens_per_s,gflops,bytes_per_rank_step,efficiency,status" \
  >"$csv.raw"
run_one() { # study ranks dp wp_y wp_x sp batch [pp [key=value ...]]
  local study=$1 n=$2 dp=$3 wy=$4 wx=$5 sp=$6 b=$7 pp=${8:-1}
  shift $(($# < 8 ? $# : 8))
  local layout="dp${dp}_wpy${wy}_wpx${wx}_sp${sp}_pp${pp}" dir="$out/runs/$study-dp${dp}_wpy${wy}_wpx${wx}_sp${sp}_pp${pp}"
  rm -rf "$dir"
  say "$study: $n rank(s), parallel.dp=$dp wp_y=$wy wp_x=$wx sp=$sp pp=$pp, train.batch=$b $*"
  local status=ok
  if ! launch "$n" "$tessera" train out="$dir" "${common[@]}" parallel.dp="$dp" parallel.wp_y="$wy" \
         parallel.wp_x="$wx" parallel.sp="$sp" parallel.pp="$pp" train.batch="$b" "$@" >"$dir.log" 2>&1; then
    status=$(grep -m1 '^tessera: error' "$dir.log" | tr ',' ';' | cut -c1-160)
    status=${status:-failed (see runs/$study-$layout.log)}
    say "  refused or failed: $status"
  fi
  # the medians over the steps after start-up, from the run's JSON log
  local fig
  fig=$(python3 - "$dir/tessera.jsonl" <<'PY' 2>/dev/null
import json, statistics, sys
steps = [e for e in map(json.loads, open(sys.argv[1])) if e.get("event") == "train_step"]
rows = [e for e in steps if e["step"] > 3]
sps = statistics.median(e["samples_per_s"] for e in rows)
last = steps[-1]
per_step = (last.get("wp_bytes_max", 0) + last.get("sp_bytes_max", 0) + last.get("pp_bytes_max", 0)) / last["step"]
print(f'{sps:.6g},{sps * last.get("tokens_per_sample", 0):.6g},{statistics.median(e["gflops"] for e in rows):.6g},'
      f'{per_step:.0f}')
PY
  ) || fig=",,,"
  [ "$status" = ok ] && [ "$fig" = ",,," ] && status="no train_step events in the log"
  echo "$study,$layout,$n,$dp,$wy,$wx,$sp,$pp,$b,$fig,,$status" >>"$csv.raw"
}

top=${ranks[-1]} # the largest power of two: the strong studies' global batch divides over every layout
for n in "${ranks[@]}"; do run_one weak "$n" "$n" 1 1 1 $((batch * n)); done
for n in "${ranks[@]}"; do run_one dp "$n" "$n" 1 1 1 $((batch * top)); done
for n in "${ranks[@]}"; do run_one wp "$n" 1 1 "$n" 1 $((batch * top)); done
for n in "${ranks[@]}"; do [ "$n" -ge 4 ] && run_one wp2d "$n" 1 2 $((n / 2)) 1 $((batch * top)); done
for n in "${ranks[@]}"; do run_one sp "$n" 1 1 1 "$n" $((batch * top)); done
for n in "${ranks[@]}"; do [ "$n" -ge 4 ] && run_one wpsp "$n" 1 1 2 $((n / 2)) $((batch * top)); done
for n in "${ranks[@]}"; do run_one pp "$n" 1 1 1 1 $((batch * top)) "$n" train.micro_batches="$top"; done

# efficiency against the one-rank row of each study (the strong studies share
# the one-rank dp row: one rank, the whole batch)
awk -F, -v OFS=, '
  NR == 1 { print; next }
  { row[NR] = $0; study[NR] = $1; n[NR] = $3; sps[NR] = $10; last = NR
    if ($3 == 1 && $10 != "") base[$1] = $10 }
  END {
    if (!("wp" in base) && ("dp" in base)) base["wp"] = base["dp"]
    if (!("sp" in base) && ("dp" in base)) base["sp"] = base["dp"]
    base["wp2d"] = ("wp" in base) ? base["wp"] : base["dp"]
    base["wpsp"] = base["wp2d"]
    if (!("pp" in base) && ("dp" in base)) base["pp"] = base["dp"]
    for (i = 2; i <= last; i++) {
      split(row[i], f, ",")
      e = (sps[i] != "" && base[study[i]] != "") ? sprintf("%.3f", sps[i] / (n[i] * base[study[i]])) : ""
      print f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], e, f[15]
    }
  }' "$csv.raw" >"$csv"
rm -f "$csv.raw"

ceiling=$(sed -n 's/.*"what":"ceiling_sgemm".*"gflops":\([0-9.eE+-]*\).*/\1/p' "$out/bench/bench.jsonl" 2>/dev/null | tail -1)
echo
column -s, -t <"$csv" 2>/dev/null || cat "$csv"
echo
[ -n "$ceiling" ] && say "SGEMM ceiling of one rank ($OMP_NUM_THREADS thread(s)): $ceiling GFLOP/s (tessera bench)"
say "table: $csv"

py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3 || true)
if [ -n "$py" ] && "$py" -c 'import matplotlib' 2>/dev/null; then
  "$py" - "$csv" "$out/scaling.png" <<'PY' && say "plot: $out/scaling.png" || say "the plot failed; the table is complete"
import csv, sys
import matplotlib
import matplotlib.ticker
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["efficiency"]]
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for study in dict.fromkeys(r["study"] for r in rows):
    rs = [r for r in rows if r["study"] == study]
    n = [int(r["ranks"]) for r in rs]
    axes[0].plot(n, [float(r["samples_per_s"]) for r in rs], "o-", label=study)
    axes[1].plot(n, [float(r["efficiency"]) for r in rs], "o-", label=study)
axes[0].set(yscale="log", xlabel="ranks", ylabel="samples/s", title="throughput")
axes[1].set(xlabel="ranks", ylabel="efficiency", title="weak (weak) and strong (dp, wp, wp2d, sp, wpsp, pp)", ylim=(0, 1.2))
ranks = sorted({int(r["ranks"]) for r in rows})
for ax in axes:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(ranks, [str(r) for r in ranks])
    ax.grid(True, alpha=0.3)
    ax.legend()
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=120)
PY
else
  say "no matplotlib in python3: no plot (apt-get install python3-matplotlib, or plot $csv yourself)"
fi
