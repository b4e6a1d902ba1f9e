/**
 * Where a ResNet-20 training step (batch 64), or MobileNetV2's (`--net mobilenetv2-96`: batch 32,
 * `--net mobilenetv2-224`: batch 8), spends its time on the wasm backend, kernel by kernel:
 *   node --import tsx bench/profile-step.ts [--net resnet20|mobilenetv2-96|mobilenetv2-224] [--steps N] [--by-shape]
 * Every wasm kernel is wrapped with a wall-clock timer (tf.profile's own bookkeeping costs more than
 * some kernels); the rest of the step is tfjs' graph, tape and optimizer work in JavaScript.
 */
import * as tf from '@tensorflow/tfjs';
import { backendInfo, initBackend } from '../src/engine/backend/index.js';
import { buildMobileNetV2 } from './mobilenetv2.js';
import { buildResNet20 } from './resnet20.js';
import { setSwitches } from '../src/engine/util/switches.js';
import { Optimizer, isDecayed } from '../src/engine/train/optimizer.js';

const spent = new Map<string, { ms: number; calls: number }>();
const byShape = process.argv.includes('--by-shape');

function timeEveryKernel(): void {
  for (const config of tf.getKernelsForBackend('wasm')) {
    const inner = config.kernelFunc;
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel({
      ...config,
      kernelFunc: (args) => {
        const t = performance.now();
        try {
          return inner(args);
        } finally {
          const key = byShape && /Conv2[dD]/.test(config.kernelName)
            ? `${config.kernelName} ${Object.values(args.inputs).filter(Boolean).map((t) => (t as tf.TensorInfo).shape.join('x')).join(' ')}` : config.kernelName;
          const entry = spent.get(key) ?? { ms: 0, calls: 0 };
          entry.ms += performance.now() - t;
          entry.calls++;
          spent.set(key, entry);
        }
      },
    });
  }
}

async function main(): Promise<void> {
  await initBackend('wasm');
  timeEveryKernel();
  const n = process.argv.indexOf('--net'), net = n >= 0 ? process.argv[n + 1] : 'resnet20';
  const [size, batch] = net === 'mobilenetv2-96' ? [96, 32] : net === 'mobilenetv2-224' ? [224, 8] : [32, 64];
  const model = net.startsWith('mobilenetv2') ? buildMobileNetV2({ inputShape: [size, size, 3] }) : buildResNet20();
  const x = tf.randomNormal([batch, size, size, 3]), y = tf.oneHot(tf.randomUniform([batch], 0, 10, 'int32'), 10).toFloat();
  // The optimizer bench:train uses (through trainModel): SGD, momentum 0.9, decay 5e-4 on kernels.
  const optimizer = new Optimizer({ optimizer: 'sgd', momentum: 0.9, weightDecay: 5e-4 });
  const parameters = model.trainableWeights.map((w) => ({ variable: (w as unknown as { val: tf.Variable }).val, decay: isDecayed(w.name) }));
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
      parameters.map((p) => p.variable));
    optimizer.apply(parameters, grads, 0.05);
    return value;
  });
  for (let i = 0; i < 3; i++) step().dataSync();
  const i = process.argv.indexOf('--steps'), steps = i >= 0 ? Number(process.argv[i + 1]) : 8;
  spent.clear();
  const times: number[] = [];
  const ab = process.argv.indexOf('--ab'), abTimes: Record<string, number[]> = {};
  for (let s = 0; s < steps; s++) {
    if (ab >= 0) setSwitches({ [process.argv[ab + 1]]: String(s % 2) });
    const t = performance.now();
    step().dataSync();
    times.push(performance.now() - t);
    if (ab >= 0) (abTimes[`${process.argv[ab + 1]}=${s % 2}`] ??= []).push(times[times.length - 1]);
  }
  for (const [mode, list] of Object.entries(abTimes)) console.log(mode, 'median', [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)].toFixed(1), list.map((v) => v.toFixed(0)).join(' '));
  const total = times.reduce((a, b) => a + b, 0) / steps;
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${JSON.stringify(backendInfo())}\nstep: mean ${total.toFixed(1)} ms, median ${sorted[Math.floor(steps / 2)].toFixed(1)} ms`);
  let inKernels = 0;
  for (const [name, { ms, calls }] of [...spent].sort((a, b) => b[1].ms - a[1].ms)) {
    inKernels += ms / steps;
    if (ms / steps >= 0.3) console.log(`  ${name.padEnd(48)} ${(ms / steps).toFixed(1).padStart(6)} ms  ${String(calls / steps).padStart(4)} calls`);
  }
  console.log(`  ${'(outside kernels)'.padEnd(48)} ${(total - inKernels).toFixed(1).padStart(6)} ms`);
  process.exit(0);
}

main().catch((err) => { console.error(err); process.exit(1); });
