#!/usr/bin/env bash
# The bad-input corpus: every broken file, key or layout in cases.txt must
# stop its command with exactly one error line that names the file or key,
# the documented exit code (1 runtime, 2 usage; core/log.h), nothing else on
# stderr, and no output that looks complete in the case's own out folder.
# A full run needs all 106 cases to pass (fewer run is a failure too).
# The broken inputs are derived here from one small valid run (synth-era5 ->
# stats -> train -> forecast -> score), so no binary file is committed.
# usage: test_bad_inputs.sh path/to/tessera source-dir [case-name-regex]
set -u
tessera=$1
src=$2
only=${3:-}
here=$src/tests/bad
# TESSERA_BAD_KEEP=1 keeps the inputs and every case's folder (and prints where):
# lib.sh's TESSERA_KEEP_TMP=1
if [ -n "${TESSERA_BAD_KEEP:-}" ]; then TESSERA_KEEP_TMP=1; fi
. "$(dirname "$0")/../lib.sh"
[ "${TESSERA_KEEP_TMP:-0}" = 1 ] && echo "keeping $tmp"
export OMP_NUM_THREADS=1
t_start=$(date +%s)

# ---- one small valid run: 3 days at 5.625 deg (32 x 64), a 2-block model ----------------
V=$tmp/valid
B=$tmp/broken
mkdir -p "$V" "$B"
DATA=(data.files="$V/data/*.nc" data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface)
MODEL=(train.step_hours=6 model.window=8 model.dim=16 model.heads=2 model.hidden=24 model.depth=2 model.t_freq=8
       train.batch=2 train.warmup=2 seed=11)
setup() { # setup LOG command...: a setup step that must succeed
  local log=$1
  shift
  "$@" >"$tmp/$log.log" 2>&1 || { echo "setup failed: $*"; tail -3 "$tmp/$log.log"; exit 1; }
}
setup synth "$tessera" synth-era5 out="$V/data" synth.start=2020-01-01 synth.days=3 synth.spinup_days=0
rm -f "$V/data/tessera.jsonl"
setup stats "$tessera" stats out="$V/run" "${DATA[@]}" stats.residual_hours=6
setup train "$tessera" train out="$V/run" "${DATA[@]}" "${MODEL[@]}" train.steps=2
setup forecast "$tessera" forecast out="$V/run" data.files="$V/data/*.nc" forecast.inits=2020-01-02 \
  forecast.members=2 forecast.leads=2 forecast.levels=2
setup score "$tessera" score out="$V/run" data.files="$V/data/*.nc" score.bootstrap=10
setup synth_mesh "$tessera" synth-mesh out="$V/mesh" synth_mesh.lattice=24 synth_mesh.trajectories=2 \
  synth_mesh.steps=4 synth_mesh.re_min=40 synth_mesh.re_max=70 synth_mesh.spinup=0.2
setup train_mesh "$tessera" train out="$V/mrun" model.kind=mesh mesh.file="$V/mesh/synth_mesh.h5" model.dim=16 \
  model.heads=2 model.hidden=32 model.depth=1 mesh.globals=1 train.steps=1 train.batch=1

# ---- broken inputs ---------------------------------------------------------------------------
PL=$V/data/era5_pressure_levels_2020.nc
SL=$V/data/era5_single_levels_2020.nc
setup inputs /usr/bin/python3 "$here/make_inputs.py" "$V" "$B"
# truncated and empty files
head -c 400000 "$PL" >"$B/pl_cut.nc"                        # NetCDF-4 cut in its data
head -c 300 "$PL" >"$B/pl_head.nc"                          # only the start of the HDF5 superblock
: >"$B/empty.nc"
mkdir -p "$B/folder.nc" "$B/folder.h5" "$B/folder.yaml"
head -c $(($(stat -c %s "$B/classic_sl.nc") - 50000)) "$B/classic_sl.nc" >"$B/classic_cut.nc"
head -c 1000000 "$V/run/stats.nc" >"$B/stats_cut.nc"        # HDF5 cut inside the climatology
head -c 100000 "$V/run/checkpoint.h5" >"$B/ck_cut.h5"       # HDF5 cut inside the weights
head -c 2000 "$V/run/checkpoint.h5" >"$B/ck_head.h5"        # HDF5 cut in its metadata
head -c 60000 "$V/run/forecast.nc" >"$B/fc_cut.nc"
head -c 30000 "$V/mesh/synth_mesh.h5" >"$B/mesh_cut.h5"       # HDF5 cut inside the trajectories
cp "$V/mesh/synth_mesh.json" "$B/mesh_cut.json"
cp "$V/mesh/synth_mesh.h5" "$B/mesh_no_meta.h5"            # the meta JSON missing
: >"$B/empty.h5"
echo "not a file of anything" >"$B/plain.txt"
# another grid: statistics of the coarse copy of the data
setup stats_coarse "$tessera" stats out="$B/stats_coarse" data.files="$B/coarse/*.nc" \
  data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface stats.residual_hours=6
# configuration files
printf 'model:\n  dim: [16\n' >"$B/unclosed.yaml"
printf 'model:\n  dmi: 16\n' >"$B/typo.yaml"
printf -- '- model.dim\n- 16\n' >"$B/list.yaml"
printf 'model:\n  dim: 16\n  dim: 32\n' >"$B/twice.yaml"
printf 'model:\n  dim: sixteen\n' >"$B/nan.yaml"
printf 'model:\n\tdim: 16\n' >"$B/tab.yaml"
printf 'train:\n  steps:\n' >"$B/novalue.yaml"
# scorecards
printf 'what,ever\n1,2\n' >"$B/bad_header.csv"
: >"$B/empty.csv"

# ---- the cases ---------------------------------------------------------------------------------
# cases.txt: name | exit code | regex of the one error line | command. The command is
# evaluated by bash with T (tessera), V (valid run), B (broken inputs), O (the case's
# own fresh out folder), P (the full-disk interposer to preload) and the arrays DATA, MODEL, FC and CK set as below.
FC=(forecast.checkpoint="$V/run/checkpoint.h5" data.files="$V/data/*.nc" forecast.inits=2020-01-02
    forecast.members=2 forecast.leads=1 forecast.levels=2)
TRAIN=(data.stats="$V/run/stats.nc" "${DATA[@]}" "${MODEL[@]}" train.steps=1)
MESH=(model.kind=mesh model.dim=16 model.heads=2 model.hidden=32 model.depth=1 mesh.globals=1 train.steps=1
      train.batch=1)
T=$tessera
# the full-disk interposer (tests/failure/enospc.c), built beside the test programs
P=$(dirname "$tessera")/tests/libtessera_enospc.so
# outputs that look complete; temporary names (*.part) are allowed but reported
FINAL='(^|/)(checkpoint\.h5|forecast\.nc|rollout\.nc|stats\.nc|scorecard\.csv|mesh_scorecard\.csv|scorecard\.jsonl|pm\.nc|synth_mesh\.h5|[^/]*\.png)$'

# prefill SRC NAME: a case that starts from an existing file copies it into its out
# folder with this first; the copy is part of the "before" snapshot.
prefill() { cp -r "$1" "$O/$2" && before=$(snapshot "$O"); }

snapshot() { # every file under $1 with its checksum, one a line
  (cd "$1" && find . -type f ! -name tessera.jsonl -exec md5sum {} + 2>/dev/null | sort -k2)
}

failed_names=()
check_case() { # name code regex command
  local name=$1 code=$2 regex=$3 cmd=$4
  local O=$tmp/cases/$name
  mkdir -p "$O"
  local before after
  before=$(snapshot "$O")
  eval "$cmd" >"$O.out" 2>"$O.err" </dev/null
  local rc=$?
  after=$(snapshot "$O")
  local why=""
  local errs
  # mpiexec adds its own banner on stderr; only tessera's own lines count there
  if [[ $cmd == mpiexec* ]]; then
    errs=$(grep -c '^tessera: error: ' "$O.err")
    stray=$(grep -v '^tessera: warn: ' "$O.err" | grep '^tessera: ' | grep -vc '^tessera: error: ')
  else
    errs=$(grep -c '^tessera: error: ' "$O.err")
    stray=$(grep -v '^tessera: warn: ' "$O.err" | grep -vc '^tessera: error: ')
  fi
  local errline
  errline=$(grep -m1 '^tessera: error: ' "$O.err")
  local new
  new=$(diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  \.\///p')
  local complete temps
  complete=$(echo "$new" | grep -E "$FINAL")
  temps=$(echo "$new" | grep -E '\.part$' | tr '\n' ' ')
  if [ "$rc" != "$code" ]; then why="exit $rc, want $code"
  elif [ "$errs" != 1 ]; then why="$errs error lines, want 1"
  elif [ "$stray" != 0 ]; then why="$stray other lines on stderr"
  elif ! grep -Eq -- "$regex" <<<"$errline"; then why="error line lacks /$regex/"
  elif [ -n "$complete" ]; then why="left output that looks complete: $(echo $complete)"
  fi
  if [ -z "$why" ]; then
    ok
    printf 'ok    %-28s exit %s%s\n' "$name" "$rc" "${temps:+ (temporary left: $temps)}"
    [ -n "${TESSERA_BAD_VERBOSE:-}" ] && echo "        | $errline"
  else
    failed_names+=("$name")
    fail "$(printf '%-28s %s' "$name" "$why")"
    sed 's/^/        | /' "$O.err" | head -6
  fi
}

ncases=0
nknown=0
while IFS= read -r line; do
  # "# known: " marks a case whose fix lies outside the files this corpus may
  # change (README.md says which); TESSERA_BAD_KNOWN=1 runs them too.
  if [[ $line == "# known: "* ]]; then
    nknown=$((nknown + 1))
    [ -n "${TESSERA_BAD_KNOWN:-}" ] || continue
    line=${line#"# known: "}
  fi
  [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
  # name | code | regex | command: fields end at " | "; the command is the rest
  name=${line%% | *}
  rest=${line#* | }
  code=${rest%% | *}
  rest=${rest#* | }
  regex=${rest%% | *}
  cmd=${rest#* | }
  name=$(echo $name) code=$(echo $code) regex=$(sed 's/ *$//' <<<"$regex")
  [ -n "$only" ] && ! [[ $name =~ $only ]] && continue
  ncases=$((ncases + 1))
  check_case "$name" "$code" "$regex" "$cmd"
done <"$here/cases.txt"

known_state="not run"
[ -n "${TESSERA_BAD_KNOWN:-}" ] && known_state="run"
echo "test_bad_inputs: $ncases cases ($nknown known defects $known_state), $(($(date +%s) - t_start)) s"
[ "$failed" = 0 ] || echo "failed: ${failed_names[*]}"
# every case must pass: all 106 of cases.txt in a full run (a corpus that
# lost cases fails), every selected one with a case-name regex
if [ -z "$only" ]; then finish 106; else finish "$ncases"; fi
