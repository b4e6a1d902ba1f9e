"""Writes Keras applications (random init, small inputs) for bench/keras-zoo.ts.

Each model is saved as <dir>/<name>.keras and <dir>/<name>.h5 with
<name>.inputs.npy (structured images) and <name>.outputs.npy (Keras' outputs in
inference mode). Batch-norm gammas/betas and zero biases are perturbed and the
moving statistics calibrated, so outputs depend on the input.

  KERAS_BACKEND=jax .cache/keras-venv/bin/python scripts/keras-fixtures/make_zoo.py DIR NAME [NAME ...]
Names: MobileNetV2 ResNet50 EfficientNetB0 DenseNet121. Prints one JSON line per model.
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import randomize_weights, structured_images  # noqa: E402

INPUT_SHAPE = (64, 64, 3)
CLASSES = 10
INPUT_COUNT = 4
CALIBRATION_COUNT = 16
# EfficientNet rescales from [0, 255] itself; the others take [-1, 1]-ish or [0, 1] inputs.
INPUT_SCALE = {"EfficientNetB0": 255.0}


def calibrate_batch_norms_in_one_pass(model, calibration_inputs):
    """One training-mode pass with momentum 0 sets every batch norm's moving
    statistics to the batch statistics of its input; since each earlier layer
    then normalises with those same statistics, inference on the calibration
    batch sees the same inputs (a per-layer pass is minutes on DenseNet)."""
    saved = []
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            saved.append((layer, "momentum", layer.momentum))
            layer.momentum = 0.0
        elif isinstance(layer, layers.Dropout):
            saved.append((layer, "rate", layer.rate))
            layer.rate = 0.0
    model(calibration_inputs, training=True)
    for layer, attribute, value in saved:
        setattr(layer, attribute, value)


def make(directory, name, seed=15):
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=INPUT_SHAPE, classes=CLASSES
    )
    scale = INPUT_SCALE.get(name, 1.0)
    calibration = structured_images(rng, CALIBRATION_COUNT, *INPUT_SHAPE, scale)
    inputs = structured_images(rng, INPUT_COUNT, *INPUT_SHAPE, scale)
    randomize_weights(model, rng)
    calibrate_batch_norms_in_one_pass(model, calibration)
    outputs = np.asarray(model.predict(inputs, verbose=0), dtype=np.float32)
    spread = float(outputs.std(axis=0).mean())
    base = os.path.join(directory, name)
    model.save(base + ".keras")
    model.save(base + ".h5")
    np.save(base + ".inputs.npy", inputs)
    np.save(base + ".outputs.npy", outputs)
    return {
        "model": name, "params": model.count_params(), "spread": spread,
        "layers": sorted({type(layer).__name__ for layer in model.layers}),
    }


def main(arguments):
    if len(arguments) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    directory, *names = arguments
    os.makedirs(directory, exist_ok=True)
    for name in names:
        started = time.time()
        result = make(directory, name)
        result["seconds"] = round(time.time() - started, 1)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
