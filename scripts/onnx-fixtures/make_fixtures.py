"""Writes the golden ONNX fixtures in test/fixtures/onnx/ with real PyTorch.

Each fixture is a small model built from real torchvision classes and blocks,
exported by torch.onnx (opset 13, dynamic batch, input "input", output
"output") as <name>.onnx, with <name>.input.npy (4 float32 NCHW images made of
gradients, stripes, disks and checkerboards) and <name>.output.npy (what
onnxruntime's CPU provider computes on them). A `_bn` twin keeps the
BatchNormalization nodes that the default export folds into the Conv before it.
fixtures.json lists them all (file, source, shapes, op types, parameter count,
whether batch norm is folded) with the versions that wrote them.

  scripts/onnx-fixtures/setup.sh
  .cache/onnx-venv/bin/python scripts/onnx-fixtures/make_fixtures.py [name ...]
  .cache/onnx-venv/bin/python scripts/onnx-fixtures/make_fixtures.py --zoo .cache/onnx-zoo

--zoo DIR writes full-size torchvision models (random init, 3x64x64, 1000
classes, 2 samples) and DIR/zoo.json instead: too large to commit, for benchmarks.
"""

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import sys

import numpy as np
import onnx
import onnxruntime
import torch
import torchvision
from torch import nn
from torchvision import models
from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf
from torchvision.models.mobilenetv3 import MobileNetV3, _mobilenet_v3_conf
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.models.squeezenet import Fire, SqueezeNet

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_fixture import check_fixture, compare, run_onnx  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# ONNX_FIXTURE_DIR writes elsewhere, e.g. to compare a rerun with the committed files.
FIXTURE_DIR = os.environ.get("ONNX_FIXTURE_DIR", os.path.join(REPO_ROOT, "test", "fixtures", "onnx"))
OPSET = 13
MAX_FILE_BYTES = 1_000_000
FIXTURE_SAMPLES = 4
ZOO_SAMPLES = 2
CALIBRATION_SAMPLES = 16
# torch vs onnxruntime on the same input; both float32 on CPU.
MAX_TORCH_ORT_DIFFERENCE = 1e-3


def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "protobuf": importlib.metadata.version("protobuf"),
    }


# ---------------------------------------------------------------- inputs


def structured_images(rng, count, height, width, channels=3):
    """Images made of gradients, stripes, disks and checkerboards (not noise),
    roughly standardized like ImageNet-normalized inputs, NCHW float32."""
    rows, cols = np.meshgrid(np.linspace(0.0, 1.0, height), np.linspace(0.0, 1.0, width), indexing="ij")
    images = np.zeros((count, channels, height, width), dtype=np.float32)
    for index in range(count):
        for channel in range(channels):
            pattern = rng.integers(4)
            if pattern == 0:
                angle = rng.uniform(0, np.pi)
                plane = np.cos(angle) * rows + np.sin(angle) * cols
            elif pattern == 1:
                frequency = rng.uniform(1.5, 4.0)
                plane = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (rows if rng.integers(2) else cols))
            elif pattern == 2:
                center = rng.uniform(0.2, 0.8, size=2)
                radius = rng.uniform(0.15, 0.4)
                plane = ((rows - center[0]) ** 2 + (cols - center[1]) ** 2 < radius**2).astype(np.float64)
            else:
                cells = rng.integers(2, 6)
                plane = ((np.floor(rows * cells) + np.floor(cols * cells)) % 2).astype(np.float64)
            plane = plane + rng.normal(0.0, 0.05, size=plane.shape)
            images[index, channel] = (plane - 0.45) / 0.25
    return images


# ---------------------------------------------------------------- models


class TinyResNet(nn.Module):
    """torchvision's ResNet layout with three BasicBlock stages (16, 32, 64 channels)
    built by torchvision's own ResNet._make_layer: conv 7x7 3->16 stride 2, bn, relu,
    maxpool, layer1 (2 blocks, 16), layer2 (1 block, 32, stride 2, conv+bn downsample),
    layer3 (1 block, 64, stride 2), avgpool, flatten, fc."""

    def __init__(self, num_classes=10):
        super().__init__()
        # Attributes ResNet._make_layer reads.
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = 16
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, 16, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = ResNet._make_layer(self, BasicBlock, 16, 2)
        self.layer2 = ResNet._make_layer(self, BasicBlock, 32, 1, stride=2)
        self.layer3 = ResNet._make_layer(self, BasicBlock, 64, 1, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_tiny():
    return TinyResNet(num_classes=10)


def squeezenet_tiny():
    """torchvision SqueezeNet 1.1 at a quarter of its widths, with its Fire modules
    and MaxPool2d(3, 2, ceil_mode=True). The stem conv has padding 1 (1.1 has 0) so
    that at 32x32 every pool's ceil_mode changes its output size (16->8->4->2;
    floor would give 7->3->1)."""
    model = SqueezeNet(version="1_1", num_classes=10)
    model.features = nn.Sequential(
        nn.Conv2d(3, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(16, 4, 16, 16),
        Fire(32, 4, 16, 16),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(32, 8, 32, 32),
        Fire(64, 8, 32, 32),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
        Fire(64, 12, 48, 48),
        Fire(96, 16, 64, 64),
    )
    final_conv = nn.Conv2d(128, 10, kernel_size=1)
    model.classifier = nn.Sequential(
        nn.Dropout(p=0.5), final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d((1, 1))
    )
    # SqueezeNet's own init (kaiming_uniform_, zero bias), also for the final conv, whose
    # N(0, 0.01) init would leave the ReLU head near zero for every input.
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def densenet_tiny():
    return models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2, num_classes=10)


def efficientnet_tiny():
    setting, last_channel = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    return EfficientNet(setting, dropout=0.2, num_classes=10, last_channel=last_channel)


def mobilenet_v3_small():
    return models.mobilenet_v3_small(width_mult=0.25, num_classes=10)


def mobilenet_v3_small_reduced():
    """Fallback when width 0.25 is over the size limit: reduced tail, 128-wide head."""
    setting, _ = _mobilenet_v3_conf("mobilenet_v3_small", width_mult=0.25, reduced_tail=True)
    return MobileNetV3(setting, last_channel=128, num_classes=10)


# name -> ([(builder, torchvision source), ...] tried in order until the file is under
# MAX_FILE_BYTES, export a BN-unfolded `_bn` twin too)
FIXTURES = {
    "resnet_tiny": (
        [(resnet_tiny, "torchvision.models.resnet.BasicBlock via ResNet._make_layer, layers (2, 1, 1) at widths 16, 32, 64")],
        True,
    ),
    "mobilenet_v3_small": (
        [
            (mobilenet_v3_small, "torchvision.models.mobilenet_v3_small(width_mult=0.25, num_classes=10)"),
            (
                mobilenet_v3_small_reduced,
                "torchvision.models.MobileNetV3(*_mobilenet_v3_conf('mobilenet_v3_small', width_mult=0.25, reduced_tail=True)[:1], last_channel=128, num_classes=10)",
            ),
        ],
        True,
    ),
    "squeezenet_tiny": (
        [(squeezenet_tiny, "torchvision.models.SqueezeNet('1_1') with Fire modules at 1/4 width, stem conv padding 1")],
        False,
    ),
    "densenet_tiny": (
        [
            (
                densenet_tiny,
                "torchvision.models.DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2, num_classes=10)",
            )
        ],
        False,
    ),
    "efficientnet_tiny": (
        [
            (
                efficientnet_tiny,
                "torchvision.models.EfficientNet(*_efficientnet_conf('efficientnet_b0', width_mult=0.25, depth_mult=0.25), dropout=0.2, num_classes=10)",
            )
        ],
        False,
    ),
    "mobilenet_v2_tiny": (
        [
            (lambda: models.mobilenet_v2(width_mult=0.25, num_classes=10), "torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)"),
            (lambda: models.mobilenet_v2(width_mult=0.2, num_classes=10), "torchvision.models.mobilenet_v2(width_mult=0.2, num_classes=10)"),
        ],
        False,
    ),
}

ZOO = {
    "resnet18": "torchvision.models.resnet18(weights=None)",
    "mobilenet_v3_small": "torchvision.models.mobilenet_v3_small(weights=None)",
    "squeezenet1_1": "torchvision.models.squeezenet1_1(weights=None)",
    "densenet121": "torchvision.models.densenet121(weights=None)",
    "efficientnet_b0": "torchvision.models.efficientnet_b0(weights=None)",
}


# ---------------------------------------------------------------- weights


def batch_norms(model):
    return [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]


@torch.no_grad()
def randomize_batch_norms(model, rng, calibration_inputs):
    """Makes batch norm matter: gamma ~U(0.5, 1.5), beta ~N(0, 0.1), running statistics
    measured on calibration images (keeps deep random nets in range), then the mean
    shifted by N(0, 0.2)·std and the variance scaled by U(0.6, 1.6)."""
    norms = batch_norms(model)
    for norm in norms:
        channels = norm.num_features
        norm.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, channels).astype(np.float32)))
        norm.bias.copy_(torch.from_numpy(rng.normal(0.0, 0.1, channels).astype(np.float32)))
    if norms:
        model.eval()
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the calibration pass
            norm.train()
        model(torch.from_numpy(calibration_inputs))
        model.eval()
    for norm in norms:
        channels = norm.num_features
        std = norm.running_var.sqrt()
        norm.running_mean.add_(torch.from_numpy(rng.normal(0.0, 0.2, channels).astype(np.float32)) * std)
        norm.running_var.mul_(torch.from_numpy(rng.uniform(0.6, 1.6, channels).astype(np.float32)))
        norm.momentum = 0.1


@torch.no_grad()
def perturb_zero_biases(model, rng):
    """torch 1.13's export de-duplicates equal initializers into one shared tensor behind
    Identity nodes; torchvision zero-initializes many biases, so give them small noise."""
    for name, parameter in model.named_parameters():
        if name.endswith("bias") and not parameter.any():
            noise = rng.normal(0.0, 0.05, tuple(parameter.shape)).astype(np.float32)
            parameter.copy_(torch.from_numpy(noise))


def prepare(model, seed, calibration_inputs):
    rng = np.random.default_rng(seed)
    model.eval()
    perturb_zero_biases(model, rng)
    randomize_batch_norms(model, rng, calibration_inputs)
    return model.eval()


# ---------------------------------------------------------------- export


@contextlib.contextmanager
def batch_norm_kept():
    """The eval-mode export runs torch._C._jit_pass_onnx_eval_peephole, which folds each
    Conv -> BatchNormalization pair into the Conv. Returning the parameters unchanged for
    the duration of the export keeps the BatchNormalization nodes."""
    original = torch._C._jit_pass_onnx_eval_peephole
    torch._C._jit_pass_onnx_eval_peephole = lambda graph, params_dict: params_dict
    try:
        yield
    finally:
        torch._C._jit_pass_onnx_eval_peephole = original


def export(model, path, sample, fold_batch_norm):
    arguments = dict(
        opset_version=OPSET,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        do_constant_folding=True,
    )
    with torch.no_grad():
        if fold_batch_norm:
            torch.onnx.export(model, sample, path, **arguments)
        else:
            with batch_norm_kept():
                torch.onnx.export(model, sample, path, **arguments)


def describe(path):
    """Checks the file with onnx.checker and lists what an importer meets in it."""
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    graph = model.graph
    op_counts = {}
    for node in graph.node:
        op_counts[node.op_type] = op_counts.get(node.op_type, 0) + 1

    def shape(value):
        return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]

    return {
        "opset": next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")),
        "ir_version": model.ir_version,
        "producer": f"{model.producer_name} {model.producer_version}",
        "onnx_inputs": {value.name: shape(value) for value in graph.input},
        "onnx_outputs": {value.name: shape(value) for value in graph.output},
        "op_types": sorted(op_counts),
        "op_counts": dict(sorted(op_counts.items())),
        "nodes": len(graph.node),
        "initializers": len(graph.initializer),
        "parameters": int(sum(int(np.prod(tensor.dims)) for tensor in graph.initializer)),
    }


def model_class(model):
    module = type(model).__module__
    if module == "__main__":  # defined here, around torchvision's blocks
        module = "scripts/onnx-fixtures/make_fixtures.py:"
        return module + type(model).__name__
    return f"{module}.{type(model).__name__}"


def write_one(model, name, directory, inputs, source, fold_batch_norm, max_bytes=None):
    """Exports, checks and runs one model; returns its fixtures.json entry, or None when
    the file is over max_bytes (removed again)."""
    path = os.path.join(directory, f"{name}.onnx")
    export(model, path, torch.from_numpy(inputs[:1]), fold_batch_norm)
    size = os.path.getsize(path)
    if max_bytes is not None and size >= max_bytes:
        os.remove(path)
        print(f"  {name}.onnx is {size} bytes, over {max_bytes}: skipped")
        return None
    info = describe(path)

    outputs = run_onnx(path, inputs)
    with torch.no_grad():
        torch_outputs = model(torch.from_numpy(inputs)).numpy()
    torch_vs_ort = compare(outputs, torch_outputs)["max_abs_difference"]
    if torch_vs_ort > MAX_TORCH_ORT_DIFFERENCE:
        raise SystemExit(f"{name}: onnxruntime differs from torch by {torch_vs_ort}")
    # The batch axis really is dynamic: one sample alone gives the same row.
    single = run_onnx(path, inputs[:1])
    single_vs_batch = compare(single, outputs[:1])["max_abs_difference"]
    if single_vs_batch > MAX_TORCH_ORT_DIFFERENCE:
        raise SystemExit(f"{name}: batch of 1 differs from row 0 of the batch by {single_vs_batch}")
    spread = float(np.abs(outputs - outputs.mean(axis=0, keepdims=True)).max())
    if spread < 1e-3:
        raise SystemExit(f"{name}: outputs hardly vary across inputs (spread {spread})")
    identities = info["op_counts"].get("Identity", 0)
    if identities:
        raise SystemExit(f"{name}: {identities} Identity nodes (shared initializers?)")
    batch_norm_nodes = info["op_counts"].get("BatchNormalization", 0)
    if not fold_batch_norm and batch_norm_nodes != len(batch_norms(model)):
        raise SystemExit(f"{name}: {batch_norm_nodes} BatchNormalization nodes, model has {len(batch_norms(model))}")

    np.save(os.path.join(directory, f"{name}.input.npy"), inputs)
    np.save(os.path.join(directory, f"{name}.output.npy"), outputs.astype(np.float32))
    recheck = check_fixture(
        path, os.path.join(directory, f"{name}.input.npy"), os.path.join(directory, f"{name}.output.npy")
    )
    assert recheck["max_abs_difference"] == 0.0, recheck

    entry = {
        "name": name,
        "file": f"{name}.onnx",
        "bytes": size,
        "input": f"{name}.input.npy",
        "output": f"{name}.output.npy",
        "torchvision_source": source,
        "torchvision_class": model_class(model),
        "input_shape": list(inputs.shape),
        "output_shape": list(outputs.shape),
        "batchnorm_folded": fold_batch_norm,
        "batchnorm_modules": len(batch_norms(model)),
        "batchnorm_nodes": batch_norm_nodes,
        "torch_parameters": int(sum(p.numel() for p in model.parameters())),
        **info,
        "torch_vs_onnxruntime_max_abs_difference": torch_vs_ort,
        "batch1_vs_batch_max_abs_difference": single_vs_batch,
    }
    print(
        f"  {name}.onnx {size} bytes, {info['parameters']} params, {info['nodes']} nodes, "
        f"BN nodes {batch_norm_nodes}, torch vs ort {torch_vs_ort:.2e}, ops {' '.join(info['op_types'])}"
    )
    return entry


# ---------------------------------------------------------------- modes


def make_fixtures(names):
    os.makedirs(FIXTURE_DIR, exist_ok=True)
    manifest_path = os.path.join(FIXTURE_DIR, "fixtures.json")
    entries = {}
    if names and os.path.exists(manifest_path):  # regenerating some: keep the others' entries
        with open(manifest_path) as file:
            entries = {entry["name"]: entry for entry in json.load(file)["fixtures"]}
    skipped = []
    for index, name in enumerate(FIXTURES):
        if names and name not in names:
            continue
        candidates, with_bn_twin = FIXTURES[name]
        seed = 1000 + index
        rng = np.random.default_rng(seed)
        inputs = structured_images(rng, FIXTURE_SAMPLES, 32, 32)
        calibration = structured_images(rng, CALIBRATION_SAMPLES, 32, 32)
        print(f"{name} (seed {seed})")
        entry = None
        for builder, source in candidates:
            torch.manual_seed(seed)
            model = prepare(builder(), seed, calibration)
            entry = write_one(model, name, FIXTURE_DIR, inputs, source, True, MAX_FILE_BYTES)
            if entry is not None:
                break
        if entry is None:
            skipped.append(name)
            entries.pop(name, None)
            continue
        entry["seed"] = seed
        entries[name] = entry
        if with_bn_twin:
            twin = write_one(model, f"{name}_bn", FIXTURE_DIR, inputs, source, False, MAX_FILE_BYTES)
            if twin is None:
                skipped.append(f"{name}_bn")
            else:
                twin["seed"] = seed
                entries[twin["name"]] = twin
    order = [key for name in FIXTURES for key in (name, f"{name}_bn") if key in entries]
    manifest = {
        "about": "ONNX files exported by real PyTorch from torchvision classes (scripts/onnx-fixtures/make_fixtures.py); "
        "outputs computed by onnxruntime's CPU provider on the inputs",
        "versions": versions(),
        "opset": OPSET,
        "fixtures": [entries[key] for key in order],
    }
    with open(manifest_path, "w") as file:
        json.dump(manifest, file, indent=2)
        file.write("\n")
    print(f"wrote {manifest_path}; versions {json.dumps(versions())}")
    if skipped:
        print(f"skipped (over {MAX_FILE_BYTES} bytes): {', '.join(skipped)}")


def make_zoo(directory, with_bn_twins):
    os.makedirs(directory, exist_ok=True)
    entries = []
    for index, name in enumerate(ZOO):
        seed = 2000 + index
        rng = np.random.default_rng(seed)
        inputs = structured_images(rng, ZOO_SAMPLES, 64, 64)
        calibration = structured_images(rng, 8, 64, 64)
        print(f"{name} (seed {seed})")
        torch.manual_seed(seed)
        model = prepare(getattr(models, name)(weights=None), seed, calibration)
        entry = write_one(model, name, directory, inputs, ZOO[name], True)
        entry["seed"] = seed
        entries.append(entry)
        if with_bn_twins:
            twin = write_one(model, f"{name}_bn", directory, inputs, ZOO[name], False)
            twin["seed"] = seed
            entries.append(twin)
    manifest_path = os.path.join(directory, "zoo.json")
    with open(manifest_path, "w") as file:
        json.dump({"versions": versions(), "opset": OPSET, "models": entries}, file, indent=2)
        file.write("\n")
    print(f"wrote {manifest_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"fixtures to regenerate (default all): {', '.join(FIXTURES)}")
    parser.add_argument("--zoo", metavar="DIR", help="write the full-size torchvision zoo to DIR instead")
    parser.add_argument("--zoo-bn", action="store_true", help="with --zoo, also write <name>_bn.onnx (BN kept)")
    arguments = parser.parse_args()
    unknown = [name for name in arguments.names if name not in FIXTURES]
    if unknown:
        parser.error(f"unknown fixture {', '.join(unknown)}; known: {', '.join(FIXTURES)}")
    torch.set_grad_enabled(False)
    if arguments.zoo:
        make_zoo(arguments.zoo, arguments.zoo_bn)
    else:
        make_fixtures(arguments.names)


if __name__ == "__main__":
    main()
