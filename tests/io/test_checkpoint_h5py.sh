#!/usr/bin/env bash
# The checkpoint layout (docs/checkpoint.md) as an independent reader sees
# it: test_checkpoint writes its sample checkpoint, and /usr/bin/python3 with
# Debian's h5py checks names, shapes, dtypes, attributes, and every value
# against the formula test_checkpoint.c documents, recomputed here.
# usage: test_checkpoint_h5py.sh path/to/tessera source-dir
set -u
tessera=$1
writer=$(dirname "$tessera")/tests/test_checkpoint
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$writer" ]; then fail "no test_checkpoint binary at $writer"; finish; exit; fi
if ! /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
    fail "/usr/bin/python3 cannot import h5py: install python3-h5py"
    finish
    exit
fi
if "$writer" "$tmp/sample.h5" >"$tmp/write.log" 2>&1; then ok; else fail "writing the sample: $(tail -3 "$tmp/write.log")"; finish; exit; fi
if [ ! -e "$tmp/sample.h5.part" ]; then ok; else fail "sample.h5.part left behind"; fi

# The Python side prints one PASS or FAIL line per check.
/usr/bin/python3 - "$tmp/sample.h5" >"$tmp/py.log" 2>&1 <<'PY'
import json, math, sys
import numpy as np
import h5py

D = 16
TABLE = [  # (name, shape) in table order k, as test_checkpoint.c declares them
    ("embed.weight", (D, 5)),
    ("blocks.0.norm1.weight", (D,)),
    ("blocks.0.attn.qkv.weight", (3 * D, D)),
    ("blocks.0.attn.proj.weight", (D, D)),
    ("blocks.1.attn.qkv.weight", (3 * D, D)),
    ("pos_table", (1, 2, 3, D)),
    ("head.weight", (4, D)),
]
GROUPS = ["params", "ema", "adam_m", "adam_v"]  # g = 0..3


def check(name, cond, detail=""):
    print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)))


def sample_values(g, k, shape):
    i = np.arange(int(np.prod(shape)), dtype=np.int64)
    return (((i * 7919 + k * 104729 + g * 31) % 2001 - 1000) / 256.0).reshape(shape)


f = h5py.File(sys.argv[1], "r")
a = f.attrs
want_attrs = {"format": "tessera checkpoint", "model_kind": "swin"}
for key, want in want_attrs.items():
    check(f"attribute {key}", isinstance(a.get(key), str) and a.get(key) == want, a.get(key))
check("attribute source", isinstance(a.get("source"), str) and a["source"].startswith("tessera "), a.get("source"))
for key, want, dtype in [("format_version", 1, np.int32), ("step", 1234, np.int64),
                         ("optimizer_step", 1234 - 1234 // 8, np.int64), ("data_position", 98765, np.int64),
                         ("rng_seed", 2**55 + 3, np.uint64)]:
    v = a.get(key)
    check(f"attribute {key}", v is not None and v.dtype == dtype and int(v) == want, repr(v))
try:
    config = json.loads(a["config"])
except Exception as e:  # noqa: BLE001 - any failure to parse is the finding
    config = e
check("config is the JSON written", config == {"model.kind": "swin", "seed": 7, "data.files": "era5/*.nc",
                                             "note": "grid 5.625\u00b0"}, config)
check("groups", set(f.keys()) == set(GROUPS) | {"stats", "normalizers"}, sorted(f.keys()))

for g, group in enumerate(GROUPS):
    names = list(f[group].keys())
    check(f"{group}/ names in table order", names == [n for n, _ in TABLE], names)
    for k, (name, shape) in enumerate(TABLE):
        ds = f[group].get(name)
        if ds is None:
            check(f"{group}/{name}", False, "missing")
            continue
        good = ds.dtype == np.dtype("<f4") and ds.shape == shape and ds.fletcher32
        check(f"{group}/{name} float32 {shape} with checksum", good, (ds.dtype, ds.shape, ds.fletcher32))
        got = ds[()].astype(np.float64)
        want = sample_values(g, k, shape)
        check(f"{group}/{name} values", got.shape == want.shape and np.array_equal(got, want),
              np.max(np.abs(got - want)) if got.shape == want.shape else got.shape)

s = f["stats"]
check("stats/channel_name", list(s["channel_name"].asstr()[()]) == ["z500", "t2m", "tisr"],
      s["channel_name"][()])
check("stats/channel_units", list(s["channel_units"].asstr()[()]) == ["m**2 s**-2", "K", "J m**-2"],
      s["channel_units"][()])
mean, std = s["mean"][()], s["std"][()]
check("stats/mean", mean.dtype == np.float64 and list(mean) == [1000.5 * (c + 1) for c in range(3)], mean)
check("stats/std", std.dtype == np.float64 and list(std) == [0.1 * (c + 1) for c in range(3)], std)
rh = s["residual_hours"][()]
check("stats/residual_hours", rh.dtype == np.int32 and list(rh) == [6, 24], rh)
rmean, rstd = s["residual_mean"][()], s["residual_std"][()]
want_rmean = [[0.125 * ((r + 1) * (c + 1)) - 0.5 for c in range(2)] for r in range(2)]
want_rstd = [[math.ldexp(1.0, -(r + c + 1)) / 3.0 for c in range(2)] for r in range(2)]
check("stats/residual_mean", rmean.shape == (2, 2) and rmean.tolist() == want_rmean, rmean)
check("stats/residual_std", rstd.shape == (2, 2) and rstd.tolist() == want_rstd, rstd)
for key, want in [("nstate", 2), ("time_first", 1577836800), ("time_last", 1609459200), ("ntimes", 1464)]:
    check(f"stats attribute {key}", int(s.attrs.get(key, -1)) == want, s.attrs.get(key))
check("no climatology in the checkpoint", "climatology" not in s, list(s.keys()))

n = f["normalizers"]
check("normalizers/ names", sorted(n.keys()) == ["node.count", "node.mean", "node.std"], list(n.keys()))
nm, ns, nc = n["node.mean"], n["node.std"], n["node.count"]
check("normalizers/node.mean", nm.dtype == np.float64 and nm[()].tolist() == [1.5, -2.25, 1e-300], nm[()])
check("normalizers/node.std", ns.dtype == np.float64 and ns[()].tolist() == [0.1, 0.2, 0.3], ns[()])
check("normalizers/node.count scalar", nc.shape == () and nc.dtype == np.float64 and nc[()] == 12345.0, nc[()])
PY
status=$?
npass=$(grep -c '^PASS ' "$tmp/py.log")
nfail=$(grep -c '^FAIL ' "$tmp/py.log")
passed=$((passed + npass))
failed=$((failed + nfail))
grep '^FAIL ' "$tmp/py.log"
if [ "$status" -ne 0 ]; then fail "python: $(tail -3 "$tmp/py.log")"; fi
finish
