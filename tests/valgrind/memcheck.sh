#!/usr/bin/env bash
# valgrind memcheck of a short run of both model families: tiny synthetic
# data made natively, then under memcheck a 2-step training and a 2-lead
# forecast of the Swin model, a training with validation forecasts, the
# deterministic regressor's training and forecast, and a 2-step training and
# rollout of the mesh model. Any memcheck error (invalid read or write, use of uninitialised
# values, bad free) fails the run. No suppressions are needed on one rank.
#
# The binary must be built without -march=native (valgrind does not decode
# every new instruction): scripts/test.sh builds build-valgrind with
# TESSERA_NATIVE=OFF. OMP_WAIT_POLICY is set so that tessera does not
# re-execute itself (core/omp_policy.h), which valgrind would not follow.
# usage: memcheck.sh path/to/tessera
set -u
tessera=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1
failed=0
vg() { # vg NAME args...: run tessera under memcheck
  local name=$1
  shift
  if valgrind --error-exitcode=99 --leak-check=no --num-callers=30 -q "$tessera" "$@" >"$tmp/$name.log" 2>&1; then
    echo "ok   memcheck $name"
  else
    echo "FAIL memcheck $name (exit $?):"
    grep -m 40 "^==" "$tmp/$name.log" || tail -5 "$tmp/$name.log"
    failed=$((failed + 1))
  fi
}

# data, natively
"$tessera" synth-era5 out="$tmp/data" synth.days=3 synth.spinup_days=2 synth.step_hours=6 >/dev/null 2>&1 \
  || { echo "FAIL: synth-era5"; exit 1; }
data=(data.files="$tmp/data/*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface)
"$tessera" stats out="$tmp/run" "${data[@]}" stats.residual_hours=6 >/dev/null 2>&1 || { echo "FAIL: stats"; exit 1; }
"$tessera" synth-mesh out="$tmp/mesh" synth_mesh.lattice=24 synth_mesh.trajectories=2 synth_mesh.steps=6 \
  synth_mesh.re_min=40 synth_mesh.re_max=70 synth_mesh.spinup=0.2 >/dev/null 2>&1 || { echo "FAIL: synth-mesh"; exit 1; }
init=$(/usr/bin/python3 -c "import netCDF4,sys,datetime as d; t=netCDF4.Dataset(sys.argv[1])['valid_time'][0]; print(d.datetime.utcfromtimestamp(int(t)).strftime('%Y-%m-%d'))" "$(ls "$tmp"/data/*pressure*.nc | head -1)")

vg swin_train train out="$tmp/run" "${data[@]}" train.step_hours=6 model.window=8 model.dim=16 model.heads=2 \
  model.hidden=24 model.depth=2 model.t_freq=8 train.steps=2 train.batch=2
vg swin_forecast forecast out="$tmp/run" data.files="$tmp/data/*.nc" forecast.inits="$init" forecast.members=2 \
  forecast.leads=2 forecast.levels=2
# validation with its one-step forecast (the sampler inside training), and
# the deterministic regressor's training and forecast
val=(train.val_start="${init}T12" train.val_every=2 train.val_samples=3 train.val_levels=2 train.val_members=2)
small=(model.window=8 model.dim=16 model.heads=2 model.hidden=24 model.depth=2 model.t_freq=8 train.steps=2 train.batch=2)
vg swin_train_val train out="$tmp/val" "${data[@]}" data.stats="$tmp/run/stats.nc" train.step_hours=6 "${small[@]}" "${val[@]}"
vg swin_regress_train train out="$tmp/reg" "${data[@]}" data.stats="$tmp/run/stats.nc" train.step_hours=6 "${small[@]}" \
  "${val[@]}" model.objective=regress
vg swin_regress_forecast forecast out="$tmp/reg" data.files="$tmp/data/*.nc" forecast.inits="$init" \
  forecast.members=2 forecast.leads=2
mesh=(model.kind=mesh mesh.file="$tmp/mesh/synth_mesh.h5")
vg mesh_train train out="$tmp/mrun" "${mesh[@]}" model.dim=16 model.heads=2 model.hidden=32 model.depth=2 \
  mesh.globals=2 train.steps=2 train.batch=2
vg mesh_forecast forecast out="$tmp/mrun" "${mesh[@]}"
[ -e "$tmp/run/forecast.nc" ] && [ -e "$tmp/mrun/rollout.nc" ] || { echo "FAIL: the runs left no output"; failed=$((failed + 1)); }
echo "memcheck: $failed failed"
[ "$failed" = 0 ]
