#!/usr/bin/env bash
# Behaviour unchanged by a refactor: the same small runs with two tessera
# binaries (say the last release and a working tree's build), compared bit
# for bit. Training of both model families on 1 rank, DP 2, WP 2 (Swin) and
# SP 2 (mesh) with validation, pushforward and noise offsets: every array of
# the checkpoints and every logged loss, validation and byte count; then
# statistics on 2 ranks, Swin forecasts on 1 rank, DP 2 and WP 2 and mesh
# rollouts on 1 rank and SP 2 from the OLD binary's checkpoints, made by both
# binaries: every variable of every file.
#
#   scripts/compare_binaries.sh OLD NEW DIR
#
# DIR holds the runs (and small data written by NEW's tests/test_era5 and
# OLD's synth-mesh). Prints one line per comparison and "differing: N";
# exits non-zero when any differs.
set -u
OLD=$1 NEW=$2 D=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
mkdir -p $D/data
[ -f $D/data/done ] || { "$(dirname "$NEW")/tests/test_era5" --write $D/data >/dev/null 2>&1 && touch $D/data/done; }
[ -f $D/stats/stats.nc ] || $OLD stats out=$D/stats data.files="$D/data/cds_*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface stats.residual_hours=6 >/dev/null 2>&1
[ -f $D/mesh/synth_mesh.h5 ] || $OLD synth-mesh out=$D/mesh seed=3 synth_mesh.trajectories=3 synth_mesh.steps=40 synth_mesh.mesh_size=0.15 synth_mesh.spinup=0.5 >/dev/null 2>&1 || $OLD synth-mesh out=$D/mesh seed=3 synth_mesh.trajectories=3 >/dev/null 2>&1
sw=(data.files="$D/data/cds_*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface data.stats=$D/stats/stats.nc
    train.step_hours=6 model.window=4 model.dim=16 model.heads=2 model.hidden=24 model.depth=2 model.t_freq=8
    train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 seed=11 train.steps=6
    train.val_start=2020-01-01T12 train.val_every=3 train.val_samples=2 train.val_levels=2 train.val_members=2)
me=(model.kind=mesh mesh.file=$D/mesh/synth_mesh.h5 model.dim=16 model.heads=2 model.hidden=24 model.depth=2
    train.batch=2 train.warmup=2 train.log_every=1 train.checkpoint_every=1000 seed=5 train.steps=6 train.val_every=3
    train.val_samples=4 mesh.val_rollout=5 mesh.pushforward=0.5 mesh.noise_offset=0.01)
fails=0
cmp_runs() { # name
  /usr/bin/python3 - $D/old_$1 $D/new_$1 <<'PY' || { fails=$((fails+1)); echo "DIFFER: $1"; }
import sys, json, h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
fa, fb = h5py.File(a + "/checkpoint.h5"), h5py.File(b + "/checkpoint.h5")
def walk(f, g=""):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
    return out
da, db = walk(fa), walk(fb)
assert set(da) == set(db), set(da) ^ set(db)
for k in da:
    assert np.array_equal(da[k], db[k]), k
def ev(d):
    keep = ("loss", "val_loss", "val_skill", "val_rollout", "grad_norm", "lr")
    r = []
    for e in map(json.loads, open(d + "/tessera.jsonl")):
        if e["event"] in ("train_step", "validation"):
            r.append((e["event"], e["step"], tuple((k, e.get(k)) for k in keep) + tuple(sorted((k, v) for k, v in e.items() if k.startswith(("val_skill_", "wp_bytes", "halo_bytes"))))))
    return r
ra, rb = ev(a), ev(b)
assert ra == rb, [(x, y) for x, y in zip(ra, rb) if x != y][:2] or (len(ra), len(rb))
print(len(da), "arrays and", len(ra), "log records equal")
PY
}
for who in old new; do
  B=$OLD; [ $who = new ] && B=$NEW
  rm -rf $D/${who}_*
  $B train out=$D/${who}_sw1 "${sw[@]}" > $D/${who}_sw1.log 2>&1 || echo "$who sw1 failed"
  mpiexec -n 2 $B train out=$D/${who}_swdp2 "${sw[@]}" parallel.dp=2 > $D/${who}_swdp2.log 2>&1 || echo "$who swdp2 failed"
  mpiexec -n 2 $B train out=$D/${who}_swwp2 "${sw[@]}" parallel.wp_x=2 > $D/${who}_swwp2.log 2>&1 || echo "$who swwp2 failed"
  $B train out=$D/${who}_me1 "${me[@]}" > $D/${who}_me1.log 2>&1 || echo "$who me1 failed"
  mpiexec -n 2 $B train out=$D/${who}_mesp2 "${me[@]}" parallel.sp=2 > $D/${who}_mesp2.log 2>&1 || echo "$who mesp2 failed"
  mpiexec -n 2 $B train out=$D/${who}_medp2 "${me[@]}" parallel.dp=2 > $D/${who}_medp2.log 2>&1 || echo "$who medp2 failed"
done
for r in sw1 swdp2 swwp2 me1 mesp2 medp2; do echo -n "$r: "; cmp_runs $r; done
# stats, forecasts and rollouts from the old binary's checkpoints, by both binaries
fc=(forecast.checkpoint=$D/old_sw1/checkpoint.h5 data.files="$D/data/cds_*.nc" forecast.inits=2020-01-01,2020-01-01T06
    forecast.members=4 forecast.leads=2 forecast.levels=3 forecast.churn=1 seed=5)
mfc=(model.kind=mesh mesh.file=$D/mesh/synth_mesh.h5 forecast.checkpoint=$D/old_me1/checkpoint.h5)
for who in old new; do
  B=$OLD; [ $who = new ] && B=$NEW
  mpiexec -n 2 $B stats out=$D/${who}_st2 data.files="$D/data/cds_*.nc" data.variables=z500,t850,t2m data.forcings=lsm,z_surface stats.residual_hours=6 parallel.dp=2 > $D/${who}_st2.log 2>&1 || echo "$who st2 failed"
  $B forecast out=$D/${who}_fc1 "${fc[@]}" > $D/${who}_fc1.log 2>&1 || echo "$who fc1 failed"
  mpiexec -n 2 $B forecast out=$D/${who}_fcdp2 "${fc[@]}" parallel.dp=2 > $D/${who}_fcdp2.log 2>&1 || echo "$who fcdp2 failed"
  mpiexec -n 2 $B forecast out=$D/${who}_fcwp2 "${fc[@]}" parallel.wp_x=2 > $D/${who}_fcwp2.log 2>&1 || echo "$who fcwp2 failed"
  $B forecast out=$D/${who}_mf1 "${mfc[@]}" > $D/${who}_mf1.log 2>&1 || echo "$who mf1 failed"
  mpiexec -n 2 $B forecast out=$D/${who}_mfsp2 "${mfc[@]}" parallel.sp=2 > $D/${who}_mfsp2.log 2>&1 || echo "$who mfsp2 failed"
done
for r in st2 fc1 fcdp2 fcwp2 mf1 mfsp2; do
  echo -n "$r: "
  /usr/bin/python3 - $D/old_$r $D/new_$r <<'PY' || { fails=$((fails+1)); echo "DIFFER: $r"; }
import sys, glob, os, netCDF4, numpy as np
a, b = sys.argv[1], sys.argv[2]
fa = sorted(os.path.basename(p) for p in glob.glob(a + "/*.nc"))
assert fa and fa == sorted(os.path.basename(p) for p in glob.glob(b + "/*.nc")), fa
n = 0
for f in fa:
    x, y = netCDF4.Dataset(f"{a}/{f}"), netCDF4.Dataset(f"{b}/{f}")
    assert set(x.variables) == set(y.variables)
    for v in x.variables:
        p, q = x[v][...], y[v][...]
        assert np.array_equal(np.ma.filled(p, 0), np.ma.filled(q, 0), equal_nan=p.dtype.kind == "f"), (f, v)
        n += 1
print(len(fa), "files,", n, "variables equal")
PY
done
echo "differing: $fails"
[ "$fails" -eq 0 ]
