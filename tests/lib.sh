# The start and end every shell test of tessera shares. Source it first:
#
#   . "$(dirname "$0")/../lib.sh"
#
# It sets up
#   $tmp           a fresh folder, removed at exit (kept with TESSERA_KEEP_TMP=1)
#   ok             count a passed check
#   fail MSG       count a failed check and print "FAIL: MSG"
#   check NAME CMD...   run CMD: "ok   NAME" when it exits 0, else fail NAME
#                  and show the last 20 lines CMD printed
#   finish [MIN]   print "<test>: P passed, F failed" and return non-zero
#                  when anything failed or fewer than MIN checks (default 1)
#                  passed: a test that checked nothing fails
# and the environment MPI runs need (root may run mpiexec, more ranks than
# cores).
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tessera-test.XXXXXX")
if [ "${TESSERA_KEEP_TMP:-0}" = 1 ]; then
  trap 'echo "kept $tmp"' EXIT
else
  trap 'rm -rf "$tmp"' EXIT
fi
passed=0
failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() {
  local name=$1
  shift
  if "$@" >"$tmp/check.log" 2>&1; then
    ok
    echo "ok   $name"
  else
    fail "$name"
    sed 's/^/     /' "$tmp/check.log" | tail -20
  fi
}
finish() {
  local min=${1:-1}
  echo "$(basename "$0" .sh): $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -ge "$min" ] && [ "$passed" -ge 1 ]
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

# tiny_swin_run TESSERA DIR: the small ERA5-format files of test_era5
# (DIR/data/cds_*.nc), their statistics and a Swin model trained 5 steps on
# them (DIR/run/{stats.nc,checkpoint.h5}); sets the array `tiny_data` (the
# data.* keys). Returns non-zero, with the log's tail printed, on a failure.
tiny_swin_run() {
  local tessera=$1 dir=$2
  mkdir -p "$dir/data"
  "$(dirname "$tessera")/tests/test_era5" --write "$dir/data" >/dev/null 2>&1 || { echo "cannot write test data"; return 1; }
  tiny_data=(data.files="$dir/data/cds_*.nc" data.variables=z500,t850,t2m,u10 data.forcings=lsm,z_surface)
  "$tessera" stats out="$dir/run" "${tiny_data[@]}" stats.residual_hours=6 >"$dir/stats.log" 2>&1 \
    || { tail -3 "$dir/stats.log"; return 1; }
  "$tessera" train out="$dir/run" "${tiny_data[@]}" train.step_hours=6 model.window=4 model.dim=16 model.heads=2 \
    model.hidden=24 model.depth=2 model.t_freq=8 train.steps=5 train.batch=2 >"$dir/train.log" 2>&1 \
    || { tail -3 "$dir/train.log"; return 1; }
}
