#!/usr/bin/env bash
# Installs the Debian 12 packages tessera builds and tests with, when any is
# missing: as root directly, else through sudo; with neither it prints the
# exact apt-get line and fails. On a supercomputer skip this: see README.md,
# "On a supercomputer".
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenmpi-dev openmpi-bin
  libnetcdf-dev netcdf-bin libhdf5-dev
  libnetcdf-mpi-dev libhdf5-openmpi-dev
  libopenblas-openmp-dev libyaml-dev libcunit1-dev
  libfftw3-dev cdo
  libcairo2-dev libgmsh-dev
  hdf5-tools valgrind clang-14 libclang-rt-14-dev libomp-14-dev
  slurmctld slurmd slurm-client munge
  python3 python3-numpy python3-netcdf4 python3-xarray python3-h5py python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

line="apt-get install -y --no-install-recommends ${missing[*]}"
echo "tessera: installing ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && $line
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive $line
else
  echo "tessera: these packages are missing and this user cannot install them. Ask an administrator to run:" >&2
  echo "  sudo apt-get update && sudo $line" >&2
  exit 1
fi
