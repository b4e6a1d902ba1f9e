#!/usr/bin/env bash
# The SIMD training kernels are C compiled to WebAssembly by clang and wasm-ld (Debian's clang
# and lld). Installs them when missing and apt can; otherwise the build warns and the engine
# runs on tfjs' stock wasm kernels.
# The relaxed-SIMD build needs clang 16+ (older clangs emit the proposal's early opcodes): where the
# default clang is older, clang-16 and lld-16 are installed beside it when apt has them.
set -euo pipefail
clang_major() { "$1" --version 2>/dev/null | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1; }
have_relaxed_clang() {
  for c in clang clang-16 clang-17 clang-18 clang-19; do
    m=$(clang_major "$c"); [ -n "$m" ] && [ "$m" -ge 16 ] && return 0
  done
  return 1
}
if command -v clang >/dev/null 2>&1 && command -v wasm-ld >/dev/null 2>&1 && have_relaxed_clang; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
    echo "[kernel-toolchain] apt-get install clang lld"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends --no-upgrade clang lld >/dev/null
  fi
  # The package lists may predate clang-16 (or be absent on a fresh machine): refresh them once if needed.
  if ! have_relaxed_clang && ! apt-cache show clang-16 >/dev/null 2>&1; then apt-get update -qq || true; fi
  if ! have_relaxed_clang && apt-cache show clang-16 >/dev/null 2>&1; then
    echo "[kernel-toolchain] apt-get install clang-16 lld-16 (relaxed-SIMD kernels)"
    apt-get install -y -qq --no-install-recommends --no-upgrade clang-16 lld-16 >/dev/null || echo "[kernel-toolchain] clang-16 did not install; the relaxed-SIMD kernels will not be built" >&2
  fi
else
  if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
    echo "[kernel-toolchain] clang and wasm-ld not found; install clang and lld (Debian/Ubuntu: apt-get install clang lld) for the fast training kernels" >&2
  else
    echo "[kernel-toolchain] no clang 16+; install clang-16 and lld-16 for the relaxed-SIMD (fused multiply-add) kernels" >&2
  fi
fi
