#!/usr/bin/env bash
# Quick start, step 2: build and run the whole test suite, twice, then
# valgrind:
#   build/       the release build (CUDA backend compiled when nvcc exists;
#                its tests say "skipped: no GPU" without one),
#   build-pario/ with parallel NetCDF-4 and the MPI HDF5 (TESSERA_NETCDF=mpi):
#                the file tests and the forecast command, whose ranks then
#                write the forecast collectively,
#   build-asan/  AddressSanitizer + UndefinedBehaviorSanitizer, unit and MPI (not `slow`)
#                tests (suppressions name MPI and driver libraries only),
#   build-fuzz/  clang's libFuzzer with ASan + UBSan: a 30 s campaign on each
#                parser harness (tests/fuzz/), from its seeds and regressions,
#   build-valgrind/  without -march=native: valgrind memcheck of a short
#                train and forecast of both model families.
# Exits non-zero if anything failed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
jobs=$(nproc)

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
(cd build && ctest --output-on-failure --timeout 600)

echo "== parallel NetCDF-4 build (MPI HDF5): the file tests and collective forecast writes"
cmake -S . -B build-pario -DCMAKE_BUILD_TYPE=Release -DTESSERA_NETCDF=mpi -DTESSERA_CUDA=OFF >/dev/null
cmake --build build-pario -j "$jobs"
(cd build-pario && ctest --output-on-failure --timeout 600 \
  -R '^(test_forecast_write|test_checkpoint|test_era5|test_era5_input|io\..*|cmd\.test_forecast(_files)?)$')

echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DTESSERA_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs"
(cd build-asan && ctest --output-on-failure --timeout 600 -L 'unit|mpi' -LE slow)

echo "== fuzzing build (libFuzzer, ASan + UBSan): a time-boxed campaign per parser"
CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_FUZZ=ON -DTESSERA_CUDA=OFF \
  -DTESSERA_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz
(cd build-fuzz && ctest --output-on-failure --timeout 600 -L fuzz)

echo "== valgrind memcheck (a short train and forecast of both model families)"
# without -march=native, which valgrind may not decode
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTESSERA_NATIVE=OFF -DTESSERA_CUDA=OFF \
  -DTESSERA_BUILD_TESTS=OFF >/dev/null
cmake --build build-valgrind -j "$jobs" --target tessera
bash tests/valgrind/memcheck.sh build-valgrind/tessera
