#!/usr/bin/env bash
# Creates the Python environment that writes the golden Keras fixtures (test/fixtures/keras/).
# Idempotent: reuses the environment when the pinned versions are already installed.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${KERAS_VENV:-$repo_root/.cache/keras-venv}"
pins=(keras==3.15.1 jax==0.10.2 jaxlib==0.10.2 numpy h5py)

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi

if "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
wanted = {"keras": "3.15.1", "jax": "0.10.2", "jaxlib": "0.10.2"}
assert all(m.version(name) == version for name, version in wanted.items())
import numpy, h5py  # noqa: F401
PY
then
  echo "keras-venv ready: $venv"
  exit 0
fi

# pip uses the machine's configured package mirror.
"$venv/bin/pip" install --quiet "${pins[@]}"
echo "keras-venv ready: $venv"
