"""Torch-Pruning (DepGraph) on the networks of bench/analyze.ts, same architectures: CIFAR ResNet-20/56/110 and
DenseNet-121 (32x32 input). Per network and fresh run (after ANALYZE_WARMUP untimed warm-up runs, default 3; the first run's times
are reported as 'first'): load (torch.load of the saved model), graph
(DependencyGraph.build_dependency), prune (MagnitudePruner with L1 importance, pruning_ratio 0.5, the head ignored:
pruner.step(), on a model whose pruner was built untimed). Prints one JSON line:
{"torch": version, "torch_pruning": version, "threads": n, "runs": n, "networks": {name: {"load": [ms...], "graph": [...], "prune": [...],
"cpu": {the same phases in process CPU ms}}}}.
  TORCH_PRUNING_DIR=.cache/torch-pruning /usr/bin/python3 bench/torch-pruning.py [runs] [network...]
Run by bench/analyze.ts with Debian's python3-torch; not a dependency of the project."""
import io, json, os, sys, time

sys.path.insert(0, os.environ.get('TORCH_PRUNING_DIR', '.cache/torch-pruning'))
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch_pruning as tp


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(cout, eps=1e-3)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(cout, eps=1e-3)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout, eps=1e-3))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        return F.relu(o + (self.proj(x) if self.proj is not None else x))


class CifarResNet(nn.Module):
    """Depth 6n+2: a 3x3 stem, 3 stages of n basic blocks (16/32/64), 1x1 projections where the shape changes."""
    def __init__(self, depth, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False); self.bn = nn.BatchNorm2d(16, eps=1e-3)
        layers, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for block in range(n):
                layers.append(Block(cin, width, 2 if stage > 0 and block == 0 else 1)); cin = width
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-3); self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(bn_size * growth, eps=1e-3); self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.bn1(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return torch.cat([x, y], 1)


class Transition(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin, eps=1e-3); self.conv = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet121(nn.Module):
    """torchvision's DenseNet-121 layout (blocks 6/12/24/16, growth 32, bottleneck 4x, compression 0.5)."""
    def __init__(self, classes=1000, growth=32, blocks=(6, 12, 24, 16), init=64, bn_size=4):
        super().__init__()
        self.stem = nn.Conv2d(3, init, 7, 2, 3, bias=False); self.stem_bn = nn.BatchNorm2d(init, eps=1e-3)
        layers, c = [], init
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(DenseLayer(c, growth, bn_size)); c += growth
            if i < len(blocks) - 1:
                layers.append(Transition(c, c // 2)); c //= 2
        self.features = nn.Sequential(*layers)
        self.final_bn = nn.BatchNorm2d(c, eps=1e-3)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem_bn(self.stem(x))), 3, 2, 1)
        x = F.relu(self.final_bn(self.features(x)))
        return self.fc(x.mean((2, 3)))


NETWORKS = {
    'resnet20': lambda: CifarResNet(20),
    'resnet56': lambda: CifarResNet(56),
    'resnet110': lambda: CifarResNet(110),
    'densenet121': lambda: DenseNet121(),
}


def median(values):
    s = sorted(values)
    return s[len(s) // 2]


def pruner_for(model, example):
    return tp.pruner.MagnitudePruner(model, example, importance=tp.importance.MagnitudeImportance(p=1),
                                     pruning_ratio=0.5, ignored_layers=[model.fc])


def time_network(name, runs, warmup):
    example = torch.randn(1, 3, 32, 32)
    torch.manual_seed(1)
    buffer = io.BytesIO()
    torch.save(NETWORKS[name](), buffer)
    saved = buffer.getvalue()
    out = {'load': [], 'graph': [], 'prune': [], 'cpu': {'load': [], 'graph': [], 'prune': []}}

    def timed(phase, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        out[phase].append((time.perf_counter() - wall) * 1000)
        out['cpu'][phase].append((time.process_time() - cpu) * 1000)
        return result

    first = None
    for run in range(warmup + runs):
        model = timed('load', lambda: torch.load(io.BytesIO(saved)))
        timed('graph', lambda: tp.DependencyGraph().build_dependency(model, example_inputs=example))
        model = torch.load(io.BytesIO(saved))
        pruner = pruner_for(model, example)
        timed('prune', pruner.step)
        with torch.no_grad():
            model(example)  # the pruned model runs
        if run == 0:
            first = {phase: out[phase][0] for phase in ('load', 'graph', 'prune')}
        if run == warmup - 1:  # warm-up runs (lazy imports, caches) are not counted, as in bench/analyze.ts
            out = {'load': [], 'graph': [], 'prune': [], 'cpu': {'load': [], 'graph': [], 'prune': []}}
    out['first'] = first
    return out


def main():
    args = sys.argv[1:]
    runs = int(args[0]) if args else 5
    warmup = int(os.environ.get('ANALYZE_WARMUP', '3'))
    names = args[1:] or list(NETWORKS)
    # One thread by default: tracing runs batch-1 forwards, where OpenMP workers only spin against the
    # other processes of a shared machine (TORCH_THREADS to change it).
    torch.set_num_threads(int(os.environ.get('TORCH_THREADS', '1')))
    version = getattr(tp, '__version__', 'unknown')
    print(json.dumps({'torch': torch.__version__, 'torch_pruning': version, 'threads': torch.get_num_threads(), 'runs': runs,
                      'warmup': warmup, 'networks': {n: time_network(n, runs, warmup) for n in names}}))


if __name__ == '__main__':
    main()
