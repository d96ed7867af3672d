#!/usr/bin/env bash
# The GPU checks, on a machine with nvcc, CMake and one GPU (nothing else
# needed): the core-only build, the backend harness and gradient checks with
# the CUDA backend, then `tessera-bench` on the CPU-free Swin shapes beside
# cuBLAS's ceiling, and the same ops in PyTorch as a peer when torch exists.
# Results go to $OUT (default ./gpu-out).
# usage: scripts/gpu_check.sh [CMAKE_PREFIX_PATH for CUnit]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-out}
mkdir -p "$out"
prefix=${1:-}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DTESSERA_CORE_ONLY=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_BUILD_TYPE=Release \
      ${prefix:+-DCMAKE_PREFIX_PATH=$prefix} >"$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1 || { grep -E 'error' "$out/build.log" | head; exit 1; }
(cd build-gpu && ctest --output-on-failure) 2>&1 | tee "$out/ctest.txt" | grep -E 'tests passed|Failed'
rc=${PIPESTATUS[0]}
# the same test programs again, verbose: each op's and each model check's line on cuda
for t in test_backend test_gradcheck test_window_attention test_swin_grad test_sampler; do
  ./build-gpu/tests/$t >"$out/$t.txt" 2>&1 || rc=1
  grep -E 'cuda|FAIL|Run Summary|asserts' "$out/$t.txt" | head -40
done

big="bench.dim=1024 bench.heads=8 bench.hidden=4096 bench.window=16 bench.grid_h=128 bench.grid_w=256"
./build-gpu/tessera-bench device=cuda out="$out" bench.reps=9 bench.ceiling_n=8192 $big | tee "$out/bench_cuda_big.txt"
./build-gpu/tessera-bench device=cuda out="$out" bench.reps=9 bench.ceiling_n=8192 | tee "$out/bench_cuda_ref.txt"
if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  python3 scripts/bench_torch_peer.py --dim 1024 --heads 8 --hidden 4096 --window 16 --grid-h 128 --grid-w 256 \
      --reps 9 --ceiling-n 8192 --json "$out/torch.jsonl" | tee "$out/torch_big.txt"
  python3 scripts/bench_torch_peer.py --reps 9 --ceiling-n 8192 --json "$out/torch.jsonl" | tee "$out/torch_ref.txt"
fi
exit "$rc"
