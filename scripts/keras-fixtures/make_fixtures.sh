#!/usr/bin/env bash
# Regenerates test/fixtures/keras/ with real Keras (all fixtures, or those named).
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${KERAS_VENV:-$repo_root/.cache/keras-venv}"
"$repo_root/scripts/keras-fixtures/setup.sh"
KERAS_BACKEND=jax "$venv/bin/python" "$repo_root/scripts/keras-fixtures/make_fixtures.py" "$@"
