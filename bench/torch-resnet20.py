"""ResNet-20 (same layout as bench/resnet20.ts) training-step time in PyTorch on the CPU, batch 64, 32x32x3;
with --net mobilenetv2 --size S --batch B, MobileNetV2 (bench/mobilenetv2.ts) at SxSx3.
Prints one JSON line: {"step_ms": median, "threads": n, "torch": version, "sgemm_gflops": peak}.
With --lockstep each step waits for a line on stdin and prints "STEP ms" when done (see lockstep() in train-step.ts).
Run by bench/train-step.ts with Debian's python3-torch; not a dependency of the project."""
import json, os, statistics, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

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

class ResNet20(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 1, 1, bias=False); self.bn = nn.BatchNorm2d(16, eps=1e-3)
        layers, cin = [], 16
        for stage, width in enumerate([16, 32, 64]):
            for block in range(3):
                layers.append(Block(cin, width, 2 if stage > 0 and block == 0 else 1)); cin = width
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(64, classes)
    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))

def conv_bn(cin, cout, k, stride, groups=1, relu6=True):
    layers = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)]
    return nn.Sequential(*layers, nn.ReLU6()) if relu6 else nn.Sequential(*layers)

class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = [conv_bn(cin, hidden, 1, 1)] if t != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, 1, relu6=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout
    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)

class MobileNetV2(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2)], 32
        for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t)); cin = c
        layers.append(conv_bn(cin, 1280, 1, 1))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(1280, classes)
    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))

def option(name, default):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default

def main():
    lockstep = '--lockstep' in sys.argv
    net, size, batch = option('--net', 'resnet20'), int(option('--size', 32)), int(option('--batch', 64))
    args = [a for i, a in enumerate(sys.argv[1:]) if a != '--lockstep' and not a.startswith('--') and not sys.argv[i].startswith('--')]
    warmup, steps = int(args[0]) if len(args) > 0 else 3, int(args[1]) if len(args) > 1 else 10
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(1)
    model = MobileNetV2() if net == 'mobilenetv2' else ResNet20()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        if lockstep: sys.stdin.readline()
        t = time.perf_counter()
        opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward(); opt.step()
        ms = (time.perf_counter() - t) * 1000
        if lockstep: print(f"STEP {ms:.2f}", flush=True)
        if i >= warmup: times.append(ms)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    best = float('inf')
    for _ in range(10):
        t = time.perf_counter(); torch.mm(a, b); best = min(best, time.perf_counter() - t)
    print(json.dumps({"step_ms": statistics.median(times), "step_times": times, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "sgemm_gflops": 2 * 1024 ** 3 / best / 1e9}))

if __name__ == '__main__':
    main()
