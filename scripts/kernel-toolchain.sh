#!/usr/bin/env bash
# The SIMD training kernels are C compiled to WebAssembly by clang and wasm-ld (Debian's clang
# and lld). Installs them when missing and apt can; otherwise the build warns and the engine
# runs on tfjs' stock wasm kernels.
set -euo pipefail
if command -v clang >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[kernel-toolchain] apt-get install clang lld"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends --no-upgrade clang lld >/dev/null
else
  echo "[kernel-toolchain] clang and wasm-ld not found; install clang and lld (Debian/Ubuntu: apt-get install clang lld) for the fast training kernels" >&2
fi
