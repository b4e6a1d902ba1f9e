"""Loads a .keras or .h5 file in real Keras, runs it on inputs (.npy) and
prints the largest absolute difference from the expected outputs (.npy).

  KERAS_BACKEND=jax .cache/keras-venv/bin/python scripts/keras-fixtures/check_fixture.py \
      MODEL INPUTS.npy OUTPUTS.npy [OUTPUTS_1.npy ...]

Exit status 0 when Keras loaded and ran the model (whatever the difference),
1 when it could not; the caller judges the difference.
Prints one line: `max_abs_difference <value> params <count>`.
"""

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402


def run_model(model_path, inputs_path):
    model = keras.saving.load_model(model_path, compile=False)
    predictions = model.predict(np.load(inputs_path), verbose=0)
    outputs = predictions if isinstance(predictions, (list, tuple)) else [predictions]
    return model, [np.asarray(output, dtype=np.float32) for output in outputs]


def check_fixture(model_path, inputs_path, output_paths):
    """Returns (largest absolute difference, parameter count)."""
    model, actual = run_model(model_path, inputs_path)
    if len(actual) != len(output_paths):
        raise ValueError(f"{model_path} has {len(actual)} outputs, expected {len(output_paths)}")
    difference = 0.0
    for path, output in zip(output_paths, actual):
        expected = np.load(path)
        if expected.shape != output.shape:
            raise ValueError(f"{model_path}: output shape {output.shape}, expected {expected.shape}")
        difference = max(difference, float(np.max(np.abs(expected - output))))
    return difference, model.count_params()


def main(arguments):
    if len(arguments) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, inputs_path, *output_paths = arguments
    try:
        difference, params = check_fixture(model_path, inputs_path, output_paths)
    except Exception as error:  # one line for the caller, not a stack trace
        print(f"{model_path}: Keras could not load or run it: {type(error).__name__}: {error}",
              file=sys.stderr)
        return 1
    print(f"max_abs_difference {difference:.9g} params {params}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
