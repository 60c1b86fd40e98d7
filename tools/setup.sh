#!/usr/bin/env bash
# Installs q7's build dependencies from Debian (when missing) and builds it into ./build.
# Usage: tools/setup.sh [extra meson options, e.g. -Dcuda=disabled]
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config meson ninja-build
      libopenblas-dev libcjson-dev libyaml-dev libstb-dev libturbojpeg0-dev
      libprotobuf-c-dev protobuf-c-compiler libsleef-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# nvcc is found on PATH or at /usr/local/cuda/bin; without it the build is CPU-only
if [ -d /usr/local/cuda/bin ]; then
    export PATH="$PATH:/usr/local/cuda/bin"
fi
if [ -f build/build.ninja ]; then
    meson configure build "$@" >/dev/null
else
    meson setup build --buildtype=release "$@"
fi
ninja -C build
