#!/usr/bin/env bash
# The floors of docs/architecture.md, checked on the source tree:
# - every #include "folder/..." between folders is an arrow the table allows;
# - no circle of includes between files outside sim/ (a .c counts as
#   including what its own header includes);
# - no file of forecast/ (but main.c) or models/ calls MPI: model-state
#   communication goes through parallel/.
# usage: test_layers.sh path/to/tessera source-dir
set -u
src=${2:?usage: test_layers.sh tessera source-dir}
. "$(dirname "$0")/../lib.sh"
# one check: the script prints every problem it finds and exits non-zero on any
if /usr/bin/python3 - "$src" <<'PY'; then ok; else fail "the floors of docs/architecture.md"; fi
import os, re, sys
src = sys.argv[1]
ALLOWED = {
    "core": {"core"},
    "mesh": {"core", "mesh"},
    "parallel": {"core", "parallel"},
    "io": {"core", "io"},
    "models": {"core", "mesh", "parallel", "models"},
    "sim": {"core", "io", "sim"},
    "eval": {"core", "io", "sim", "eval"},
    "forecast": {"core", "mesh", "parallel", "io", "models", "sim", "eval", "forecast"},
}
inc = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([^"]+)"', re.M)
mpi = re.compile(r'\bMPI_[A-Z][a-z_]+\s*\(')
files, edges, bad = {}, {}, []
for floor in ALLOWED:
    for root, _, names in os.walk(os.path.join(src, floor)):
        for n in names:
            if n.endswith((".c", ".h", ".cu", ".cuh")):
                path = os.path.join(root, n)
                rel = os.path.relpath(path, src)
                text = open(path, encoding="utf-8").read()
                files[rel] = text
                edges[rel] = set()
                for m in inc.finditer(text):
                    target = f"{m.group(1)}/{m.group(2)}"
                    if m.group(1) not in ALLOWED[floor]:
                        bad.append(f"{rel} includes {target}: {floor}/ may include only {sorted(ALLOWED[floor])}")
                    edges[rel].add(target)
                code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
                if floor in ("forecast", "models") and rel != "forecast/main.c" and mpi.search(code):
                    bad.append(f"{rel} calls MPI ({mpi.search(code).group(0).strip()}...): use parallel/")
n_arrows = sum(len(v) for v in edges.values())
# a .c file stands with its header: merge them into one node
def node(f):
    return f[:-2] if f.endswith((".c", ".h")) else f
graph = {}
for f, ts in edges.items():
    graph.setdefault(node(f), set()).update(node(t) for t in ts if node(t) != node(f))
seen, stack, cycles = {}, [], []
def visit(u):
    seen[u] = 1
    stack.append(u)
    for v in sorted(graph.get(u, ())):
        if seen.get(v) == 1:
            cyc = stack[stack.index(v):] + [v]
            if not all(c.startswith("sim/") for c in cyc):
                cycles.append(" -> ".join(cyc))
        elif v not in seen:
            visit(v)
    stack.pop()
    seen[u] = 2
sys.setrecursionlimit(10000)
for u in sorted(graph):
    if u not in seen:
        visit(u)
bad += [f"include circle: {c}" for c in cycles]
for b in bad:
    print("FAIL:", b)
if len(files) < 100 or n_arrows < 300:
    print(f"FAIL: read only {len(files)} files and {n_arrows} includes: is {src} the source tree?")
    sys.exit(1)
print(f"{len(files)} files, {n_arrows} includes: {len(bad)} problems")
sys.exit(1 if bad else 0)
PY
finish 1
