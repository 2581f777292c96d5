#!/usr/bin/env bash
# Installs every system dependency of kdecomp from Debian 12 packages.
# Idempotent: packages already present are skipped, `apt-get update` runs at most once.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache clang-format git
  # LibTorch (C++) and PyTorch (Python) 1.13.1; OpenBLAS so matmul is not 10x slower
  libtorch-dev python3-torch libopenblas0-pthread
  # ONNX + protobuf
  libonnx-dev python3-onnx libprotobuf-dev protobuf-compiler
  # header-only libraries
  nlohmann-json3-dev catch2 libcli11-dev
  # reference store checksums (CRC-32, the same as Python's zlib.crc32; ISA-L computes it) and content digests
  zlib1g-dev libxxhash-dev libisal-dev
  # measuring
  time
  # bench/zoo.py: torchvision's models as held-out architectures
  python3-torchvision
  # fuzzing and sanitizers: clang with libFuzzer and the ASan/UBSan runtimes (bench/fuzz.sh, scripts/sanitize.sh)
  clang libclang-rt-14-dev
  # the batch report's headless-browser test (tests/batch/check_index_html.py)
  chromium
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
