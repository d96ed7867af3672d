#!/bin/bash
# The perfect-model baseline in the demo chain (docs/score.md): `tessera demo
# demo.size=quick` saves the simulator's state at the forecast's initial
# times, and its score stage (score.perfect_model=true) reruns the simulator
# from them into OUT/perfect_model.nc and scores it as system perfect_model.
#
# Checked: the scorecard has perfect_model rows for every variable and lead
# tessera has (rmse, crps, spread_skill); perfect_model.nc has tessera's
# structure (members, inits, steps, levels, NaN level slots); its members
# differ; it beats persistence at 24 h for z500, as a model that is the truth
# up to a small initial perturbation must; a missing restart file is one
# error line naming the time and synth.restart_times.
# The zero-perturbation check (members equal the truth bit for bit) is in
# test_perfect_model.c, which can set the amplitude.
#
# usage: bash test_perfect_model.sh <path/to/tessera> <source dir>
set -u
TESSERA=$1
. "$(dirname "$0")/../lib.sh"
pass() { ok; echo "ok   $*"; } # a passed check, with what it saw
out=$tmp/demo

if "$TESSERA" demo out="$out" demo.size=quick >"$tmp/demo.log" 2>&1; then pass "quick demo runs"; else
    fail "quick demo failed:"; tail -20 "$tmp/demo.log"; finish; exit
fi
for t in 2021-01-21T00 2021-01-24T00; do
    [ -f "$out/data/restart_$t.nc" ] && pass "restart file of $t saved" || fail "no $out/data/restart_$t.nc"
done
[ -f "$out/perfect_model.nc" ] && pass "perfect_model.nc written" || fail "no perfect_model.nc"

# Every (variable, lead) of tessera has perfect_model rmse, crps and spread_skill rows.
missing=$(awk -F, 'NR > 1 { key = $1 "," $2 "," $3 "," $4 }
    NR > 1 && $5 == "tessera" { want[key] = 1 }
    NR > 1 && $5 == "perfect_model" { have[key] = 1 }
    END { for (k in want) if (!(k in have)) print k }' "$out/scorecard.csv")
n_pm=$(grep -c ',perfect_model,' "$out/scorecard.csv")
if [ -z "$missing" ] && [ "$n_pm" -gt 0 ]; then pass "perfect_model has every row tessera has ($n_pm rows)"; else
    fail "perfect_model rows missing: $(echo $missing | head -c 400)"; fi

rmse() { awk -F, -v v="$1" -v l="$2" -v h="$3" -v s="$4" \
    '$1 == v && $2 == l && $3 == h && $4 == "rmse" && $5 == s { print $6 }' "$out/scorecard.csv"; }
pm=$(rmse z 500 24 perfect_model) pers=$(rmse z 500 24 persistence)
if [ -n "$pm" ] && [ -n "$pers" ] && awk -v a="$pm" -v b="$pers" 'BEGIN { exit !(a > 0 && a < 0.25 * b) }'; then
    pass "z500 24 h: perfect model RMSE $pm < 1/4 of persistence's $pers"
else fail "z500 24 h: perfect model RMSE '$pm' vs persistence '$pers'"; fi

# Structure and member spread, read by an independent reader.
if /usr/bin/python3 - "$out/forecast.nc" "$out/perfect_model.nc" >"$tmp/py.log" 2>&1 <<'EOF'
import sys
import netCDF4, numpy as np
fc, pm = (netCDF4.Dataset(p) for p in sys.argv[1:3])
for d in ("number", "time", "step", "pressure_level", "latitude", "longitude"):
    assert (d in fc.dimensions) == (d in pm.dimensions), d
    if d in fc.variables:
        assert np.array_equal(fc[d][:], pm[d][:]), "coordinate " + d
names = {v for v in fc.variables if fc[v].dimensions[:3] == ("number", "time", "step")}
assert names == {v for v in pm.variables if pm[v].dimensions[:3] == ("number", "time", "step")}, "variables"
for v in sorted(names):
    a, b = np.asarray(fc[v][:], dtype=np.float64), np.asarray(pm[v][:], dtype=np.float64)
    assert a.shape == b.shape, v
    if "pressure_level" in fc[v].dimensions:
        for l in range(a.shape[3]):
            tess_nan = np.isnan(a[:, :, :, l]).all()
            assert tess_nan == np.isnan(b[:, :, :, l]).all(), f"{v} level slot {l}: NaN in one file only"
            if not tess_nan:
                assert np.isfinite(b[:, :, :, l]).all(), f"{v} level slot {l}: non-finite values"
    else:
        assert np.isfinite(b).all(), v
    if b.shape[0] > 1:
        sd = np.nanstd(b, axis=0)
        assert np.nanmax(sd) > 0, f"{v}: the members are identical"
print("structure and spread ok:", ", ".join(sorted(names)))
EOF
then pass "$(tail -1 "$tmp/py.log")"; else fail "perfect_model.nc structure/spread:"; cat "$tmp/py.log"; fi

# A missing restart file: one error line naming the time and the key.
rm "$out/data/restart_2021-01-24T00.nc"
"$TESSERA" score out="$tmp/rescore" data.files="$out/data/era5_*.nc" data.stats="$out/stats.nc" \
    score.forecast="$out/forecast.nc" score.perfect_model=true score.restarts="$out/data" score.bootstrap=0 \
    >"$tmp/err.log" 2>&1
rc=$?
line=$(grep -i 'perfect model' "$tmp/err.log" | grep -v 'building' | head -1)
if [ $rc -ne 0 ] && [[ $line == *2021-01-24T00* ]] && [[ $line == *synth.restart_times* ]]; then
    pass "missing restart file: exit $rc, '$line'"
else fail "missing restart file: exit $rc, '$line'"; cat "$tmp/err.log"; fi
# the demo, 2 restart files, perfect_model.nc, the rows, z500 against
# persistence, the structure, the missing restart file
finish 8
