#!/usr/bin/env bash
# tessera's scorecard against an independent numpy computation.
#
# test_score --write writes small ERA5-format truth files, a statistics file
# with a climatology (q500 left out, a ws10 climatology added), a 5-member
# tessera forecast and a 3-member second ensemble (perfect.nc: an extra
# initial time and lead, no q), and scores them. When `tessera score` is
# wired into the binary, the same files are scored by the command too and
# its scorecard must equal the C API's byte for byte; the numpy checks then
# read the command's scorecard.
#
# numpy (Debian's /usr/bin/python3, netCDF4) reads the same files and
# recomputes every row from the formulas of docs/score.md: RMSE, ACC, fair
# CRPS, spread-skill, ws10, wv<level>, for every variable, level, lead and
# system, and the bootstrap intervals (its own Philox-4x32-10 and
# percentiles). Values must agree within 1e-5 relative: both sides sum in
# double from the same float32 fields, so the only differences are the
# order of sums (~1e-13) and ws10, which tessera stores as float32 per
# member (~1e-7).
# usage: test_score_numpy.sh path/to/tessera source-dir
set -u
tessera=$1
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1

writer="$(dirname "$tessera")/tests/test_score"
if "$writer" --write "$tmp" >"$tmp/write.log" 2>&1; then ok; else fail "test_score --write: $(tail -3 "$tmp/write.log")"; echo "$passed passed, $failed failed"; exit 1; fi
card="$tmp"

# tessera score, once the lead has wired it and declared its score.* keys
if "$tessera" score --help 2>/dev/null | grep -q "not yet available" ||
   ! "$tessera" config score.forecast=x score.baselines=a=b score.bootstrap=1000 >/dev/null 2>&1; then
  echo "note: tessera score is not wired into the binary yet; checking the scorecard of the C entry point (test_score --write)"
else
  mkdir -p "$tmp/cli"
  if "$tessera" score out="$tmp/cli" data.files="$tmp/truth_*.nc" data.stats="$tmp/stats.nc" \
       score.forecast="$tmp/forecast.nc" score.baselines="perfect_model=$tmp/perfect.nc" \
       score.bootstrap=1000 seed=7 >"$tmp/cli.log" 2>&1; then ok; else fail "tessera score: $(tail -3 "$tmp/cli.log")"; fi
  if cmp -s "$tmp/scorecard.csv" "$tmp/cli/scorecard.csv" && cmp -s "$tmp/scorecard.jsonl" "$tmp/cli/scorecard.jsonl"; then ok
  else fail "tessera score's scorecard differs from the C entry point's on the same files and seed"; fi
  grep -q "relative skill" "$tmp/cli.log" && ok || fail "tessera score printed no table"
  card="$tmp/cli"
fi

/usr/bin/python3 - "$tmp" "$card" >"$tmp/py.log" 2>&1 <<'PY'
import csv, datetime, json, sys
import numpy as np
import netCDF4

data, card = sys.argv[1], sys.argv[2]
SEED, NBOOT, PURPOSE = 7, 1000, 7
results = []
def check(name, cond, msg=""):
    results.append(bool(cond))
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + msg))

def nc(path):
    d = netCDF4.Dataset(path)
    d.set_auto_mask(False)
    return d

# ---- weights: WB2 cell areas, computed on ascending latitudes
def lat_weights(lat):
    order = np.argsort(lat)
    s = lat[order]
    mid = (s[1:] + s[:-1]) / 2
    bounds = np.concatenate([[-90.0], mid, [90.0]])
    area = np.sin(np.deg2rad(bounds[1:])) - np.sin(np.deg2rad(bounds[:-1]))
    w = np.empty_like(area)
    w[order] = area
    return w / w.mean()

def wmean(x, w):  # over the last two axes (lat, lon)
    return (x * w[:, None]).mean(axis=(-2, -1))

# ---- truth
truth = {}
ttimes = None
for f in ("truth_sl.nc", "truth_pl.nc"):
    d = nc(f"{data}/{f}")
    t = d["valid_time"][:].astype(np.int64)
    ttimes = t if ttimes is None else ttimes
    assert (t == ttimes).all()
    for name, v in d.variables.items():
        if v.dimensions[:1] != ("valid_time",) or v.ndim < 3:
            continue
        a = v[:].astype(np.float64)
        if v.ndim == 4:
            for k, lev in enumerate(d["pressure_level"][:]):
                truth[f"{name}{lev:g}"] = a[:, k]
        else:
            truth[name] = a
tindex = {int(t): i for i, t in enumerate(ttimes)}

# ---- climatology
st = nc(f"{data}/stats.nc")
names = [str(x).strip() for x in netCDF4.chartostring(st["channel_name"][:])]
nstate = len(st.dimensions["state_channel"])
clim_all = st["climatology"][:].astype(np.float64)
hours = list(st["hour"][:])
doys = list(st["dayofyear"][:])
def clim(spec, t):
    if spec not in names[:nstate]:
        return None
    dt = datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)
    doy = dt.timetuple().tm_yday
    return clim_all[names.index(spec), doys.index(doy), hours.index(dt.hour)]

# ---- forecasts: per system, spec -> (M, ninit, nstep, lat, lon), plus coordinates
META = {}  # spec -> (variable, level or None), from the files' dims
def read_forecast(path):
    d = nc(path)
    out = {}
    for name, v in d.variables.items():
        if v.dimensions[:3] != ("number", "time", "step"):
            continue
        a = v[:].astype(np.float64)
        if "pressure_level" in v.dimensions:
            for k, lev in enumerate(d["pressure_level"][:]):
                out[f"{name}{lev:g}"] = a[:, :, :, k]
                META[f"{name}{lev:g}"] = (name, float(lev))
        else:
            out[name] = a
            META[name] = (name, None)
    return out, d["time"][:].astype(np.int64), d["step"][:].astype(np.float64), d["latitude"][:], d["number"].size

fc, inits, steps, lat, M = read_forecast(f"{data}/forecast.nc")
pm, pinits, psteps, plat, PM = read_forecast(f"{data}/perfect.nc")
assert (lat == plat).all()
# the perfect-model file scored on tessera's cases only
pi = [list(pinits).index(t) for t in inits]
ps = [list(psteps).index(s) for s in steps]
pm = {k: v[:, pi][:, :, ps] for k, v in pm.items()}
w = lat_weights(lat)
ninit, nstep = len(inits), len(steps)
channels = list(fc.keys())

def valid(i, l):
    return int(inits[i]) + int(round(steps[l] * 3600))

# ---- derived targets: (label, csv variable, level, kind, channels)
targets = [(c, META[c][0], META[c][1], "plain", (c,)) for c in channels]
if "u10" in channels and "v10" in channels:
    targets.append(("ws10", "ws10", None, "speed", ("u10", "v10")))
for c in channels:
    var, lev = META[c]
    if var == "u" and lev is not None and f"v{lev:g}" in channels:
        targets.append((f"wv{lev:g}", f"wv{lev:g}", lev, "vector", (c, f"v{lev:g}")))

def speed(u, v):
    return np.sqrt(u * u + v * v)

def field(src, kind, chans, sel):
    """src: spec -> array; sel: index tuple picking (M, lat, lon) or (lat, lon)."""
    if kind == "speed":
        return speed(src[chans[0]][sel], src[chans[1]][sel])
    return src[chans[0]][sel]

def truth_at(t, chans, kind):
    k = tindex[t]
    if kind == "speed":
        return speed(truth[chans[0]][k], truth[chans[1]][k])
    return truth[chans[0]][k]

def target_clim(label, kind, chans, t):
    return clim(label, t) if kind == "speed" else clim(chans[0], t)

# ---- per-init components for an ensemble (M, lat, lon), truth and climatology
def components(ens, y, c, kind, ens_v=None, y_v=None, is_clim=False):
    out = {}
    mean = ens.mean(axis=0)
    if kind == "vector":
        mv = ens_v.mean(axis=0)
        out["mse"] = wmean((mean - y) ** 2 + (mv - y_v) ** 2, w)
        return out
    m = ens.shape[0]
    out["mse"] = wmean((mean - y) ** 2, w)
    skill = np.abs(ens - y).mean(axis=0)
    pairs = np.abs(ens[:, None] - ens[None, :]).sum(axis=(0, 1))
    out["crps"] = wmean(skill - (pairs / (2 * m * (m - 1)) if m > 1 else 0), w)
    if m > 1:
        out["var"] = wmean(ens.var(axis=0, ddof=1), w)
    if c is not None and not is_clim:
        fa, oa = mean - c, y - c
        out["acc"] = wmean(fa * oa, w) / np.sqrt(wmean(fa * fa, w) * wmean(oa * oa, w))
    return out

def system_components(name, label, kind, chans, i, l):
    t = valid(i, l)
    y = truth_at(t, chans, kind)
    c = target_clim(label, kind, chans, t)
    y_v = truth[chans[1]][tindex[t]] if kind == "vector" else None
    if name in ("tessera", "perfect_model"):
        src = fc if name == "tessera" else pm
        if any(ch not in src for ch in chans):
            return None
        ens = field(src, kind, chans, (slice(None), i, l))
        ens_v = src[chans[1]][:, i, l] if kind == "vector" else None
        return components(ens, y, c, kind, ens_v, y_v)
    if name == "persistence":
        k0 = tindex[int(inits[i])]
        f = speed(truth[chans[0]][k0], truth[chans[1]][k0]) if kind == "speed" else truth[chans[0]][k0]
        f_v = truth[chans[1]][k0][None] if kind == "vector" else None
        return components(f[None], y, c, kind, f_v, y_v)
    # climatology: the target's own climatology; u and v ones for a vector wind
    if kind == "vector":
        cu, cv = clim(chans[0], t), clim(chans[1], t)
        if cu is None or cv is None:
            return None
        return components(cu[None], y, None, kind, cv[None], y_v, is_clim=True)
    if c is None:
        return None
    return components(c[None], y, c, kind, is_clim=True)

# ---- Philox-4x32-10 and the bootstrap resamples (docs/rng.md, docs/score.md)
MASK = np.uint64(0xFFFFFFFF)
def philox(ctr, key):
    c = [np.asarray(x, dtype=np.uint64) for x in ctr]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c[0]
        p1 = np.uint64(0xCD9E8D57) * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & MASK, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & MASK]
        k0 = (k0 + np.uint64(0x9E3779B9)) & MASK
        k1 = (k1 + np.uint64(0xBB67AE85)) & MASK
    return c

def bootstrap_indices(n):
    key = (SEED & 0xFFFFFFFF, ((SEED >> 32) & 0xFFFFFF) | (PURPOSE << 24))
    r, k = np.meshgrid(np.arange(NBOOT, dtype=np.uint64), np.arange(n, dtype=np.uint64), indexing="ij")
    block = k >> np.uint64(2)
    out = philox([block & MASK, block >> np.uint64(32), r & MASK, r >> np.uint64(32)], key)
    lanes = np.stack(out)  # (4, NBOOT, n)
    word = np.take_along_axis(lanes, (k & np.uint64(3)).astype(np.int64)[None], 0)[0]
    u = np.float32(((word >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0 ** -24)
    idx = np.floor(u.astype(np.float64) * n).astype(np.int64)
    return np.minimum(idx, n - 1)

IDX = bootstrap_indices(ninit)

def statistic(metric, comp, sel):
    if metric == "rmse":
        return np.sqrt(comp["mse"][sel].mean(axis=-1))
    if metric == "spread_skill":
        return np.sqrt(comp["var"][sel].mean(axis=-1)) / np.sqrt(comp["mse"][sel].mean(axis=-1))
    return comp[metric][sel].mean(axis=-1)

# ---- expected rows
expected = {}
systems = ["tessera", "perfect_model", "persistence", "climatology"]
for label, var, level, kind, chans in targets:
    for l in range(nstep):
        for s in systems:
            per = [system_components(s, label, kind, chans, i, l) for i in range(ninit)]
            if per[0] is None:
                continue
            comp = {k: np.array([p[k] for p in per]) for k in per[0]}
            for metric, need in (("rmse", "mse"), ("acc", "acc"), ("crps", "crps"), ("spread_skill", "var")):
                if need not in comp:
                    continue
                value = statistic(metric, comp, slice(None))
                boot = statistic(metric, comp, IDX)
                lo, hi = np.percentile(boot, [2.5, 97.5])
                key = (var, "" if level is None else f"{level:g}", f"{steps[l]:g}", metric, s)
                expected[key] = (value, lo, hi)

# ---- the scorecard
with open(f"{card}/scorecard.csv") as f:
    header = f.readline().rstrip("\n")
    rows = list(csv.reader(f))
check("CSV header", header == "variable,level,lead_hours,metric,system,value,ci_low,ci_high", header)
got = {tuple(r[:5]): tuple(float(x) for x in r[5:]) for r in rows}
check("no duplicate rows", len(got) == len(rows), f"{len(rows)} rows, {len(got)} distinct")
missing, extra = set(expected) - set(got), set(got) - set(expected)
check("the rows are exactly the applicable (variable, level, lead, metric, system)", not missing and not extra,
      f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
labels = {k[0] if k[0].startswith("wv") else k[0] + k[1] for k in got}
check("headline variables present", {"z500", "t850", "q700", "wv850", "t2m", "ws10", "msl"} <= labels, str(labels))

def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)

worst = {}
for key in set(expected) & set(got):
    for what, a, b in zip(("value", "ci_low", "ci_high"), got[key], expected[key]):
        e = rel(a, b)
        m = (key[3], what)
        if e > worst.get(m, (0, None))[0]:
            worst[m] = (e, key)
for metric in ("rmse", "acc", "crps", "spread_skill"):
    for what in ("value", "ci_low", "ci_high"):
        e, key = worst.get((metric, what), (0, None))
        check(f"{metric} {what} within 1e-5 of numpy (worst {e:.1e})", e <= 1e-5, str(key))
n_ws = sum(1 for k in got if k[0] == "ws10")
n_wv = sum(1 for k in got if k[0].startswith("wv"))
check("ws10 scored with every metric", {k[3] for k in got if k[0] == "ws10"} == {"rmse", "acc", "crps", "spread_skill"}, str(n_ws))
check("wv<level> scored by rmse only", n_wv > 0 and {k[3] for k in got if k[0].startswith("wv")} == {"rmse"}, str(n_wv))
check("persistence CRPS equals its MAE (1 member)",
      all(rel(got[k][0], expected[k][0]) <= 1e-5 for k in got if k[4] == "persistence" and k[3] == "crps"))

# JSON lines: the same rows
with open(f"{card}/scorecard.jsonl") as f:
    js = [json.loads(line) for line in f]
same = len(js) == len(rows)
for j, r in zip(js, rows):
    lev = "" if j["level"] is None else f"{j['level']:g}"
    key = (j["variable"], lev, f"{j['lead_hours']:g}", j["metric"], j["system"])
    vals = (j["value"], j["ci_low"], j["ci_high"])
    same = same and key == tuple(r[:5]) and all(abs(a - float(b)) <= 1e-12 * max(1, abs(a)) for a, b in zip(vals, r[5:]))
check("scorecard.jsonl holds the CSV's rows", same)

print(f"py: {sum(results)} passed, {len(results) - sum(results)} failed")
PY
cat "$tmp/py.log"
np=$(grep -c '^PASS' "$tmp/py.log")
nf=$(grep -c '^FAIL' "$tmp/py.log")
grep -q '^py: ' "$tmp/py.log" || { fail "the numpy check did not finish"; }
passed=$((passed + np))
failed=$((failed + nf))
finish
