#!/usr/bin/env bash
# The tessera binary as a user meets it: help, version, configuration errors
# (one line, exit 2, naming the key), YAML files, the JSON logs, and
# docs/config.md in step with the key table.
# usage: test_cli.sh path/to/tessera source-dir
set -u
tessera=$1
src=$2
. "$(dirname "$0")/../lib.sh"


# expect CODE PATTERN -- command...: exit code CODE and stderr+stdout matching PATTERN;
# an error (CODE != 0) must be exactly one line on stderr.
expect() {
  local code=$1 pattern=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" != "$code" ]; then fail "$* exited $rc, want $code: $(head -3 "$tmp/err")"; return; fi
  if ! cat "$tmp/out" "$tmp/err" | grep -Eq -- "$pattern"; then fail "$*: output lacks /$pattern/"; return; fi
  if [ "$code" != 0 ] && [ -z "${MULTILINE:-}" ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
    fail "$*: error is $(wc -l <"$tmp/err") lines, want 1"; return
  fi
  ok
}

expect 0 "^tessera [0-9]+\.[0-9]+\.[0-9]+$" -- "$tessera" --version
expect 0 "synth-era5.*" -- "$tessera" --help
MULTILINE=1 expect 2 "usage: tessera" -- "$tessera"
for c in synth-era5 synth-mesh stats train forecast score plot bench demo config; do
  expect 0 "usage: tessera $c" -- "$tessera" "$c" --help
done
expect 2 "unknown command 'trian' \(did you mean 'train'\?\)" -- "$tessera" trian
expect 2 "synth_mesh.lattice" -- "$tessera" synth-mesh out="$tmp/sm" synth_mesh.re_max=300
expect 2 "nothing to plot: no .*forecast.nc or .*scorecard.csv" -- "$tessera" plot out="$tmp/plot_empty"

# Configuration errors: one line naming the key and the nearest valid key.
expect 2 "unknown configuration key 'parallel.dpp' \(did you mean 'parallel.dp'\?\)" -- "$tessera" config parallel.dpp=2
expect 2 "'bench.reps' wants an integer, got 'abc'" -- "$tessera" config bench.reps=abc
expect 2 "'bench.reps' = 0 is out of range" -- "$tessera" config bench.reps=0
expect 2 "'bench.reps'.*1.5" -- "$tessera" config bench.reps=1.5
expect 2 "'device' must be one of cpu\|cuda, got 'gpu'" -- "$tessera" config device=gpu
expect 2 "key" -- "$tessera" config =3
expect 2 "parallel.dp x pp x wp_y x wp_x x sp = 2 x 1 x 1 x 1 x 1 = 2 ranks, but the job has 1 MPI ranks" -- \
  "$tessera" config parallel.dp=2

# YAML: nested and flat keys, origins, overrides win, errors name file and line.
cat >"$tmp/run.yaml" <<'YAML'
# a run
seed: 7
parallel:
  wp_x: 1
bench:
  reps: 3
bench.dim: 64
YAML
expect 0 "^bench.reps = 3  # .*run.yaml:6$" -- "$tessera" config "$tmp/run.yaml"
expect 0 "^bench.dim = 64  # .*run.yaml:7$" -- "$tessera" config "$tmp/run.yaml"
expect 0 "^seed = 9  # command line$" -- "$tessera" config "$tmp/run.yaml" seed=9
printf 'bench:\n  reps: [1, 2\n' >"$tmp/bad.yaml"
expect 2 "bad.yaml.*line [0-9]+" -- "$tessera" config "$tmp/bad.yaml"
printf 'bench:\n  repz: 3\n' >"$tmp/typo.yaml"
expect 2 "typo.yaml:2.*'bench.repz' \(did you mean 'bench.reps'\?\)" -- "$tessera" config "$tmp/typo.yaml"
expect 2 "cannot open config '.*missing.yaml'" -- "$tessera" config "$tmp/missing.yaml"

# docs/config.md is generated from the key table and must be in step with it.
"$tessera" config --markdown >"$tmp/config.md"
if diff -q "$tmp/config.md" "$src/docs/config.md" >/dev/null; then ok; else
  fail "docs/config.md is stale: regenerate with 'tessera config --markdown > docs/config.md'"
fi

# bench: a table, JSON lines with the documented fields (read back by
# Python's json module), and start/end events in the run log.
expect 0 "ceiling: sgemm" -- "$tessera" bench out="$tmp/b" bench.reps=1 bench.ceiling_n=128 bench.dim=32 \
  bench.heads=2 bench.hidden=64 bench.grid_h=16 bench.grid_w=16
if python3 - "$tmp/b/bench.jsonl" "$tmp/b/tessera.jsonl" <<'PY'; then ok; else fail "bench JSON lines"; fi
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
whats = {r["what"] for r in rows}
need = {"ceiling_sgemm", "qkv_gemm", "attn_scores_gemm", "softmax_fwd", "swiglu_fwd", "rmsnorm_fwd",
        "gather_rows", "adamw", "swin_block_fwd", "swin_forward", "swin_train_step", "profile"}
assert need <= whats, need - whats
profile = [r for r in rows if r["what"] == "profile"]
assert abs(sum(r["share"] for r in profile) - 1) < 0.2 and all(r["calls"] > 0 for r in profile), profile
assert [r for r in rows if r["what"] == "swin_train_step"][0]["model_memory_mb"] > 0
for r in rows:
    if r["what"] == "profile":
        continue
    for k in ("what", "backend", "shape", "ms", "gflops", "ceiling_gflops", "ratio"):
        assert k in r, (k, r)
    assert r["ms"] > 0 and r["ceiling_gflops"] > 0, r
    assert abs(r["ratio"] - r["gflops"] / r["ceiling_gflops"]) < 1e-3 * max(1, r["ratio"]), r
events = [json.loads(l) for l in open(sys.argv[2])]
assert events[0]["event"] == "start" and events[0]["command"] == "bench", events[0]
assert events[0]["config"]["bench.reps"] == 1, events[0]
assert events[-1]["event"] == "end" and events[-1]["exit"] == 0, events[-1]
PY
# two samples a step: every op's work doubles (the window ops once counted
# the batch twice, read past their buffers and crashed)
expect 0 "ceiling: sgemm" -- "$tessera" bench out="$tmp/b2" bench.reps=1 bench.ceiling_n=128 bench.dim=32 \
  bench.heads=2 bench.hidden=64 bench.grid_h=16 bench.grid_w=16 bench.window=4 bench.batch=2 bench.depth=1
expect 0 "ceiling: sgemm" -- "$tessera" bench out="$tmp/b1" bench.reps=1 bench.ceiling_n=128 bench.dim=32 \
  bench.heads=2 bench.hidden=64 bench.grid_h=16 bench.grid_w=16 bench.window=4 bench.batch=1 bench.depth=1
if python3 - "$tmp/b1/bench.jsonl" "$tmp/b2/bench.jsonl" <<'PY'; then ok; else fail "bench.batch=2 work"; fi
import json, sys
def flops(p):
    return {r["what"]: r["gflops"] * r["ms"] * 1e6 for r in map(json.loads, open(p)) if "gflops" in r}
a, b = flops(sys.argv[1]), flops(sys.argv[2])
ops = ["qkv_gemm", "attn_scores_gemm", "softmax_fwd", "attn_values_gemm", "proj_gemm", "mlp_up_gemm", "swiglu_fwd"]
for op in ops:
    assert abs(b[op] / a[op] - 2) < 0.01, (op, a[op], b[op])
PY
expect 2 "bench.heads = 3 does not divide bench.dim = 32" -- "$tessera" bench out="$tmp/b" bench.dim=32 bench.heads=3
expect 2 "device=cuda is not available" -- env CUDA_VISIBLE_DEVICES= "$tessera" bench out="$tmp/b" device=cuda

# Processes sharing one OUT (a job array's tasks) write whole JSON lines:
# 8 at once, each a multi-kilobyte start event, and every line parses.
for i in 1 2 3 4 5 6 7 8; do "$tessera" synth-mesh out="$tmp/shared" synth_mesh.re_max=300 >/dev/null 2>&1 & done
wait
/usr/bin/python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
starts = [json.loads(l) for l in lines if json.loads(l)["event"] == "start"]
assert len(starts) == 8 and all(len(json.dumps(e)) > 2000 for e in starts), len(starts)
' "$tmp/shared/tessera.jsonl" && ok || fail "concurrent writers interleaved tessera.jsonl lines"

finish
