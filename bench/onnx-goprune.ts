/**
 * A training method on a full-size ONNX model: GoPrune on torchvision's ResNet-18 exported by
 * PyTorch (.cache/onnx-zoo/resnet18.onnx, random init, 3×64×64, 1000 classes), run through the
 * built CLI like a user would, with small synthetic data (chosen and labelled so: accuracies mean
 * nothing; the point is that training, pruning and the ONNX write-back complete). The written
 * .onnx is then run in ONNX Runtime on the zoo's inputs. Writes bench/results/onnx-goprune.json.
 *   npm run bench:onnx-goprune [-- --model resnet18] [--method goprune]
 */
import { copyFileSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pruneWithCli } from './cli-events.js';
import { runOnnx } from '../src/engine/io/onnx/runtime.js';
import { readNpy } from '../src/engine/data/npy.js';
import type { DoneEvent } from '../src/protocol/events.js';

const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : undefined; };
const MODEL = arg('model') ?? 'resnet18';
const METHOD = arg('method') ?? 'goprune';
const ZOO = resolve('.cache/onnx-zoo');
const SAMPLES = 96;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'prunelens-onnx-bench-'));
  copyFileSync(join(ZOO, `${MODEL}.onnx`), join(dir, `${MODEL}.onnx`));
  const config = {
    model: `${MODEL}.onnx`, method: METHOD, target: { flopsReduction: 0.3 }, output: 'pruned',
    data: { format: 'synthetic', samples: SAMPLES, classes: 10, validationSplit: 1 / 3 },
    train: { epochs: 1, batchSize: 16, learningRate: 0.01 }, finetune: { epochs: 1, batchSize: 16, learningRate: 0.01 },
    latency: { runs: 10, batchSize: 1 },
  };
  const configPath = join(dir, `${MODEL}.prune.json`);
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  const started = performance.now();
  let done: DoneEvent | undefined;
  let error: string | undefined;
  const warnings: string[] = [];
  const { stderr } = await pruneWithCli(configPath, (e) => {
    if (e.type === 'done') done = e;
    else if (e.type === 'error') error = e.message;
    else if (e.type === 'warning') warnings.push(e.message);
  });
  const wallS = (performance.now() - started) / 1000;
  if (!done?.output) throw new Error(`${METHOD} on ${MODEL} failed: ${error ?? stderr.trim().split('\n').pop()}`);
  const written = resolve(dir, done.output);
  const input = readNpy(join(ZOO, `${MODEL}.input.npy`));
  const [out] = await runOnnx(written, { data: Float32Array.from(input.data as Float32Array), shape: input.shape });
  const finite = Array.from(out.data).every(Number.isFinite);
  const result = {
    about: `${METHOD} on torchvision ${MODEL} exported to ONNX by PyTorch (random init, 3×64×64); data: synthetic, ${SAMPLES} samples, 10 classes (accuracies meaningless); 1 training and 1 fine-tuning epoch`,
    output: done.output, wallS, params: [done.before.params, done.after.params], flops: [done.before.flops, done.after.flops],
    fileBytes: [statSync(join(ZOO, `${MODEL}.onnx`)).size, statSync(written).size], latency: done.latency, onnxCheck: done.onnx,
    onnxRuntimeRunsOutput: { shape: out.shape, finite }, warnings,
  };
  console.log(JSON.stringify(result, null, 2));
  writeFileSync(`bench/results/onnx-${METHOD}.json`, JSON.stringify(result, null, 2) + '\n');
  if (!finite) process.exit(1);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
