#!/usr/bin/env bash
# Installs what sluice builds and tests with, from Debian 12's packages.
# The CUDA toolkit is not a Debian package: where /usr/local/cuda exists the
# CUDA backend builds (-Dcuda=auto), elsewhere it is left out.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update
$sudo apt-get install -y --no-install-recommends \
  build-essential pkg-config meson ninja-build \
  libcriterion-dev libxxhash-dev libjson-c-dev libpcre2-dev libopenblas-dev liblapacke-dev \
  libmicrohttpd-dev libsystemd-dev libssl-dev \
  libhwloc-dev hwloc libnuma-dev numactl \
  dpdk dpdk-dev libdpdk-dev \
  clang libclang-rt-14-dev iproute2
