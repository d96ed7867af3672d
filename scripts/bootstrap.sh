#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build tessera into build/,
# and run `tessera demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
# OpenBLAS and tessera share one OpenMP runtime; with libgomp's default
# busy-waiting its idle threads steal the cores the GEMMs need (a training
# step runs 1.7x faster with passive waiting on 2 cores; docs/bench.md).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
echo
echo "Built build/tessera. Running the demo:"
./build/tessera demo out=demo
