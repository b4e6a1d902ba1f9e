"""Writes the golden Keras fixtures in test/fixtures/keras/ with real Keras.

Each fixture is one small model saved as <name>.keras and <name>.h5, with
<name>.inputs.npy (images with spatial structure) and <name>.outputs.npy
(what Keras computed on them, float32). A model with several outputs writes
<name>.outputs.<i>.npy instead, in model.outputs order.

Run through scripts/keras-fixtures/make_fixtures.sh, or:
  KERAS_BACKEND=jax .cache/keras-venv/bin/python scripts/keras-fixtures/make_fixtures.py [name ...]
"""

import importlib.metadata
import os
import platform
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_fixture import check_fixture  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# KERAS_FIXTURE_DIR writes elsewhere, e.g. to compare a rerun with the committed files.
FIXTURE_DIR = os.environ.get("KERAS_FIXTURE_DIR", os.path.join(REPO_ROOT, "test", "fixtures", "keras"))
FIXTURE_INPUT_COUNT = 4
CALIBRATION_INPUT_COUNT = 16
MAX_FILE_BYTES = 1_000_000


def versions():
    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "jax": importlib.metadata.version("jax"),
        "jaxlib": importlib.metadata.version("jaxlib"),
        "numpy": np.__version__,
        "h5py": importlib.metadata.version("h5py"),
        "backend": keras.backend.backend(),
    }


def structured_images(rng, count, height, width, channels, scale=1.0):
    """Images made of gradients, stripes, disks and checkerboards (not noise),
    so outputs of a convolutional model depend on where things are."""
    rows, cols = np.meshgrid(
        np.linspace(0.0, 1.0, height), np.linspace(0.0, 1.0, width), indexing="ij"
    )
    images = np.zeros((count, height, width, channels), dtype=np.float32)
    for index in range(count):
        for channel in range(channels):
            pattern = rng.integers(4)
            if pattern == 0:
                angle = rng.uniform(0, np.pi)
                plane = np.cos(angle) * rows + np.sin(angle) * cols
            elif pattern == 1:
                frequency = rng.uniform(1.5, 4.0)
                angle = rng.uniform(0, np.pi)
                phase = rng.uniform(0, 2 * np.pi)
                plane = 0.5 + 0.5 * np.sin(
                    2 * np.pi * frequency * (np.cos(angle) * rows + np.sin(angle) * cols)
                    + phase
                )
            elif pattern == 2:
                center_row, center_col = rng.uniform(0.2, 0.8, size=2)
                radius = rng.uniform(0.15, 0.4)
                plane = (
                    (rows - center_row) ** 2 + (cols - center_col) ** 2 < radius**2
                ).astype(np.float32)
            else:
                cells = rng.integers(2, 5)
                plane = (
                    (np.floor(rows * cells * 0.999) + np.floor(cols * cells * 0.999)) % 2
                ).astype(np.float32)
            low, high = np.sort(rng.uniform(0.0, 1.0, size=2))
            images[index, :, :, channel] = low + (high - low + 0.2) * plane
    return (np.clip(images, 0.0, 1.0) * scale).astype(np.float32)


def randomize_weights(model, rng):
    """Default initialisation makes outputs nearly input-independent: give
    batch norms spread-out affine weights and zero biases small noise."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, moving_mean, moving_variance = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, size=gamma.shape).astype(np.float32),
                rng.normal(0.0, 0.1, size=beta.shape).astype(np.float32),
                moving_mean,
                moving_variance,
            ])
        elif getattr(layer, "bias", None) is not None:
            bias = layer.bias
            values = np.asarray(bias.numpy())
            if not values.any():
                bias.assign(rng.normal(0.0, 0.05, size=values.shape).astype(np.float32))


def calibrate_batch_norms(model, calibration_inputs):
    """Sets each batch norm's moving statistics to its input's statistics on
    the calibration inputs, in graph order so later ones see calibrated inputs."""
    for layer in model.layers:
        if not isinstance(layer, layers.BatchNormalization):
            continue
        prefix = keras.Model(model.inputs, layer.input)
        features = np.asarray(prefix.predict(calibration_inputs, verbose=0))
        reduce_axes = tuple(range(features.ndim - 1))
        gamma, beta, _, _ = layer.get_weights()
        layer.set_weights([
            gamma,
            beta,
            features.mean(axis=reduce_axes).astype(np.float32),
            features.var(axis=reduce_axes).astype(np.float32),
        ])


# ---------------------------------------------------------------- models


def tiny_cnn():
    inputs = keras.Input(shape=(16, 16, 3))
    x = layers.Conv2D(8, 3, padding="same", use_bias=True)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(12, 3)(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(5, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn"), 1.0


def mobilenet_block():
    """MobileNetV2's stem and one inverted residual block, named like keras.applications."""
    inputs = keras.Input(shape=(32, 32, 3), name="image")
    x = layers.ZeroPadding2D(padding=((0, 1), (0, 1)), name="Conv1_pad")(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", use_bias=False, name="Conv1")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name="bn_Conv1")(x)
    block_input = layers.ReLU(6.0, name="Conv1_relu")(x)

    x = layers.Conv2D(24, 1, padding="same", use_bias=False, name="block_1_expand")(block_input)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name="block_1_expand_BN")(x)
    x = layers.ReLU(6.0, name="block_1_expand_relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="block_1_depthwise")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name="block_1_depthwise_BN")(x)
    x = layers.ReLU(6.0, name="block_1_depthwise_relu")(x)
    x = layers.Conv2D(8, 1, padding="same", use_bias=False, name="block_1_project")(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.999, name="block_1_project_BN")(x)
    x = layers.Add(name="block_1_add")([block_input, x])

    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(4, name="predictions")(x)
    return keras.Model(inputs, outputs, name="mobilenet_block"), 1.0


def squeeze_excite(calibration_inputs):
    """EfficientNet's preprocessing, a squeeze-excite block and its padding/dropout quirks."""
    channels = 16
    inputs = keras.Input(shape=(16, 16, 3))
    rescaling = layers.Rescaling(1.0 / 255.0)
    normalization = layers.Normalization(axis=-1)
    normalization.adapt(calibration_inputs / 255.0)
    x = rescaling(inputs)
    x = normalization(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="silu")(x)
    tensor = x

    gate = layers.GlobalAveragePooling2D()(x)
    gate = layers.Reshape((1, 1, channels))(gate)
    gate = layers.Conv2D(4, 1, padding="same", activation="silu")(gate)
    gate = layers.Conv2D(channels, 1, padding="same", activation="sigmoid")(gate)
    x = layers.Multiply()([tensor, gate])

    x = layers.ZeroPadding2D(padding=((1, 2), (1, 2)))(x)
    x = layers.DepthwiseConv2D(5, strides=2, padding="valid")(x)
    x = layers.Activation("hard_silu")(x)
    x = layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(6)(x)
    return keras.Model(inputs, outputs, name="squeeze_excite"), 255.0


def concat_dense():
    """Two branches concatenated; several layers of one class so .keras names repeat."""
    inputs = keras.Input(shape=(16, 16, 3))
    left = layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    right = layers.Conv2D(4, 1, padding="same")(inputs)
    right = layers.BatchNormalization()(right)
    right = layers.Activation("relu")(right)
    x = layers.Concatenate(axis=-1)([left, right])
    x = layers.Conv2D(8, 3, padding="same")(x)
    x = layers.AveragePooling2D(pool_size=2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    outputs = layers.Dense(3)(x)
    return keras.Model(inputs, outputs, name="concat_dense"), 1.0


def sequential_cnn():
    model = keras.Sequential(
        [
            keras.Input(shape=(16, 16, 3)),
            layers.Conv2D(4, 3, strides=2, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Flatten(),
            layers.Dense(3),
        ],
        name="sequential_cnn",
    )
    return model, 1.0


def two_heads():
    """Two outputs and LayerNormalization (transformer-style heads in small CNNs)."""
    inputs = keras.Input(shape=(16, 16, 3))
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.LayerNormalization(axis=-1)(x)
    x = layers.Activation("gelu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(12, activation="tanh")(x)
    x = layers.LayerNormalization()(x)
    class_scores = layers.Dense(4, activation="softmax", name="class_scores")(x)
    box = layers.Dense(2, name="box")(x)
    return keras.Model(inputs, [class_scores, box], name="two_heads"), 1.0


BUILDERS = {
    "tiny_cnn": lambda calibration: tiny_cnn(),
    "mobilenet_block": lambda calibration: mobilenet_block(),
    "squeeze_excite": squeeze_excite,
    "concat_dense": lambda calibration: concat_dense(),
    "sequential_cnn": lambda calibration: sequential_cnn(),
    "two_heads": lambda calibration: two_heads(),
}


def randomize_layer_norms(model, rng):
    for layer in model.layers:
        if isinstance(layer, layers.LayerNormalization):
            gamma, beta = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, size=gamma.shape).astype(np.float32),
                rng.normal(0.0, 0.1, size=beta.shape).astype(np.float32),
            ])


def make_fixture(name, seed):
    keras.backend.clear_session()  # auto-generated layer names restart at conv2d, conv2d_1, ...
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)

    # Both sets are made at scale 1; a builder's scale says what its input range is.
    calibration01 = structured_images(rng, CALIBRATION_INPUT_COUNT, 16, 16, 3)
    model, scale = BUILDERS[name](calibration01 * 255.0)
    height, width, channels = model.inputs[0].shape[1:]
    calibration = structured_images(rng, CALIBRATION_INPUT_COUNT, height, width, channels, scale)
    inputs = structured_images(rng, FIXTURE_INPUT_COUNT, height, width, channels, scale)

    randomize_weights(model, rng)
    randomize_layer_norms(model, rng)
    calibrate_batch_norms(model, calibration)

    predictions = model.predict(inputs, verbose=0)
    outputs = predictions if isinstance(predictions, (list, tuple)) else [predictions]
    outputs = [np.asarray(output, dtype=np.float32) for output in outputs]

    base = os.path.join(FIXTURE_DIR, name)
    model.save(base + ".keras")
    model.save(base + ".h5")
    np.save(base + ".inputs.npy", inputs)
    output_paths = (
        [base + ".outputs.npy"]
        if len(outputs) == 1
        else [f"{base}.outputs.{index}.npy" for index in range(len(outputs))]
    )
    for path, output in zip(output_paths, outputs):
        np.save(path, output)

    for output in outputs:
        spread = float(output.std(axis=0).mean())
        print(f"  {name}: output shape {output.shape}, spread across inputs {spread:.3g}")
        if spread < 1e-3:
            raise SystemExit(f"{name}: outputs hardly depend on the input (spread {spread:.3g})")

    for model_path in (base + ".keras", base + ".h5"):
        difference, _ = check_fixture(model_path, base + ".inputs.npy", output_paths)
        print(f"  {os.path.basename(model_path)} reloads in Keras, max |difference| {difference:.3g}")
        if difference > 1e-5:
            raise SystemExit(f"{model_path}: reloaded model differs by {difference}")

    for path in [base + ".keras", base + ".h5", base + ".inputs.npy", *output_paths]:
        size = os.path.getsize(path)
        print(f"  {os.path.relpath(path, REPO_ROOT)}: {size} bytes")
        if size > MAX_FILE_BYTES:
            raise SystemExit(f"{path} is {size} bytes, over the 1 MB limit for fixtures")


def main(names):
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    for key, value in versions().items():
        print(f"{key} {value}")
    unknown = [name for name in names if name not in BUILDERS]
    if unknown:
        raise SystemExit(f"unknown fixture {unknown[0]}; known: {', '.join(BUILDERS)}")
    for seed, name in enumerate(BUILDERS):
        if names and name not in names:
            continue
        print(name)
        make_fixture(name, seed=1000 + seed)


if __name__ == "__main__":
    main(sys.argv[1:])
