"""Runs an ONNX file in onnxruntime (CPU) on inputs (.npy) and prints, as one JSON
line, how far its output is from the expected output (.npy).

  .cache/onnx-venv/bin/python scripts/onnx-fixtures/check_fixture.py MODEL.onnx INPUT.npy OUTPUT.npy

Prints {"file", "output_shape", "max_abs_difference", "max_rel_difference",
"max_abs_expected"}, where max_rel_difference = max_abs_difference / max|expected|
(relative to the output's scale, so near-zero logits do not blow it up).
Exit status 0 when onnxruntime loaded and ran the model (whatever the difference),
1 when it could not (one JSON line with "error"), 2 on wrong usage; the caller
judges the difference.
"""

import json
import sys

import numpy as np
import onnxruntime


def run_onnx(model_path, inputs):
    """Output of the model's first output for `inputs`, fed to its first input."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(
        model_path, sess_options=options, providers=["CPUExecutionProvider"]
    )
    input_name = session.get_inputs()[0].name
    return session.run(None, {input_name: inputs})[0]


def compare(actual, expected):
    if actual.shape != expected.shape:
        raise ValueError(f"output shape {list(actual.shape)}, expected {list(expected.shape)}")
    difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    max_abs = float(difference.max()) if difference.size else 0.0
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return {
        "output_shape": list(actual.shape),
        "max_abs_difference": max_abs,
        "max_rel_difference": max_abs / scale if scale > 0 else max_abs,
        "max_abs_expected": scale,
    }


def check_fixture(model_path, inputs_path, output_path):
    inputs = np.load(inputs_path).astype(np.float32)
    expected = np.load(output_path)
    return {"file": model_path, **compare(run_onnx(model_path, inputs), expected)}


def main(arguments):
    if len(arguments) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    model_path, inputs_path, output_path = arguments
    try:
        result = check_fixture(model_path, inputs_path, output_path)
    except Exception as error:  # one line for the caller, not a stack trace
        message = f"onnxruntime could not load or run it: {type(error).__name__}: {error}"
        print(json.dumps({"file": model_path, "error": message.splitlines()[0]}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
