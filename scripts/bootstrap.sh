#!/usr/bin/env bash
# Quick start, step 1: install what is missing, build tessera into build/,
# and run `tessera demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
echo
echo "Built build/tessera. Running the demo:"
./build/tessera demo out=demo
