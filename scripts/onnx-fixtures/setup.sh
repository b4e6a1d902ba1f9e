#!/usr/bin/env bash
# Creates the Python environment that writes the golden ONNX fixtures (test/fixtures/onnx/):
# Debian's torch 1.13 / torchvision 0.14 (system site packages of /usr/bin/python3) plus pinned
# onnx and onnxruntime from pip. Idempotent: reuses the environment when the pins are installed.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${ONNX_VENV:-$repo_root/.cache/onnx-venv}"
system_python=/usr/bin/python3

if ! "$system_python" -c 'import torch, torchvision' 2>/dev/null; then
  echo "setup.sh: $system_python cannot import torch/torchvision; install Debian's python3-torch and python3-torchvision" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  "$system_python" -m venv --system-site-packages "$venv"
fi

if "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
wanted = {"onnx": "1.23.1", "onnxruntime": "1.30.0", "numpy": "1.24.2"}
assert all(m.version(name) == version for name, version in wanted.items())
import torch, torchvision, onnx, onnxruntime  # noqa: F401
PY
then
  echo "onnx-venv ready: $venv"
  exit 0
fi

# Debian's torch is built against numpy 1.x: keep pip from upgrading it.
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "numpy==1.24.2" > "$constraints"
# pip uses the machine's configured package mirror.
"$venv/bin/pip" install --quiet --constraint "$constraints" onnx==1.23.1 onnxruntime==1.30.0
echo "onnx-venv ready: $venv"
