// Generates the e2e workspace: a tiny TF.js model (conv→bn→relu→pool→conv→flatten→dense on 8×8×1),
// a runnable config with synthetic data, a slow config for cancelling, and invalid configs.
// Usage: node test/e2e/fixtures.mjs <workspace-folder>
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const target = process.argv[2];
if (!target) {
  console.error('usage: node test/e2e/fixtures.mjs <workspace-folder>');
  process.exit(2);
}

// tfjs prints a hint about tfjs-node on import; the fixture does not need speed.
const { log, warn } = console;
console.log = console.warn = () => {};
const tf = await import('@tensorflow/tfjs');
Object.assign(console, { log, warn });
await tf.setBackend('cpu');

function buildTinyCnn(inputShape = [8, 8, 1], classes = 3) {
  const init = (seed) => tf.initializers.heNormal({ seed });
  const input = tf.input({ shape: inputShape, name: 'image' });
  let x = tf.layers.conv2d({ name: 'conv1', filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(1) }).apply(input);
  x = tf.layers.batchNormalization({ name: 'bn1' }).apply(x);
  x = tf.layers.reLU({ name: 'relu1' }).apply(x);
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x);
  x = tf.layers.conv2d({ name: 'conv2', filters: 12, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(2) }).apply(x);
  x = tf.layers.flatten({ name: 'flatten' }).apply(x);
  const output = tf.layers.dense({ name: 'logits', units: classes, activation: 'softmax', kernelInitializer: init(3) }).apply(x);
  return tf.model({ inputs: input, outputs: output, name: 'tiny_cnn' });
}

async function saveModel(model, dir) {
  mkdirSync(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const data = Array.isArray(artifacts.weightData) ? tf.io.concatenateArrayBuffers(artifacts.weightData) : artifacts.weightData;
    writeFileSync(join(dir, 'weights.bin'), Buffer.from(data));
    const modelJson = {
      format: 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
    };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
}

/** A float32 .npy file (format 1.0) holding zeros of the given shape. */
function writeNpy(file, shape) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const unpadded = 10 + dict.length + 1;
  const header = dict + ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const count = shape.reduce((a, b) => a * b, 1);
  writeFileSync(file, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.alloc(count * 4)]));
}

const json = (value) => JSON.stringify(value, null, 2) + '\n';
const quickTraining = { epochs: 1, batchSize: 16 };

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
const model = buildTinyCnn();
await saveModel(model, join(target, 'tiny'));
// The same network on MNIST-shaped input, without a config beside it, for the explorer's
// "Prune Model…" flow: its generated config trains on MNIST, so the run lasts a few seconds.
await saveModel(buildTinyCnn([28, 28, 1], 10), join(target, 'ui'));
// A colour-image model no built-in data set fits, for the data step's other choices.
await saveModel(buildTinyCnn([12, 12, 3], 4), join(target, 'rgb'));
// A Keras 3 model written by real Keras (16×16×3, 5 classes), for Analyze Model and Prune Model… on a .keras file.
mkdirSync(join(target, 'keras'), { recursive: true });
copyFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'keras', 'tiny_cnn.keras'), join(target, 'keras', 'tiny_cnn.keras'));
// An ONNX ResNet exported by real PyTorch (3×32×32 NCHW input, 10 classes), for Analyze Model on an .onnx file.
mkdirSync(join(target, 'onnx'), { recursive: true });
copyFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'onnx', 'resnet_tiny.onnx'), join(target, 'onnx', 'resnet_tiny.onnx'));

writeFileSync(join(target, 'tiny.prune.json'), json({
  model: 'tiny/model.json',
  method: 'l1',
  target: { flopsReduction: 0.5 },
  output: 'out/tiny',
  data: { format: 'synthetic', samples: 64, classes: 3 },
  train: quickTraining,
  finetune: quickTraining,
  latency: { runs: 3, batchSize: 1 },
}));

// Long enough to be cancelled mid-way.
writeFileSync(join(target, 'slow.prune.json'), json({
  model: 'tiny/model.json',
  method: 'l1',
  target: { flopsReduction: 0.5 },
  output: 'out/slow',
  data: { format: 'synthetic', samples: 512, classes: 3 },
  train: { epochs: 1, batchSize: 16 },
  finetune: { epochs: 400, batchSize: 16 },
  latency: { runs: 3, batchSize: 1 },
}));

writeFileSync(join(target, 'invalid.prune.json'), json({
  model: 'missing/model.json',
  method: 'l1',
  target: { flopsReduction: 1.5 },
  output: 'out/invalid',
}));

writeFileSync(join(target, 'same-output.prune.json'), json({
  model: 'tiny/model.json',
  method: 'l1',
  target: { channelRatio: 0.99 },
  output: 'tiny',
}));

mkdirSync(join(target, 'data'), { recursive: true });
writeNpy(join(target, 'data', 'x-10x10.npy'), [16, 10, 10, 1]);
writeNpy(join(target, 'data', 'y.npy'), [16]);
writeFileSync(join(target, 'shape-mismatch.prune.json'), json({
  model: 'tiny/model.json',
  method: 'l1',
  target: { flopsReduction: 0.5 },
  output: 'out/shape',
  data: { format: 'npy', x: 'data/x-10x10.npy', y: 'data/y.npy' },
}));

writeFileSync(join(target, 'mnist-mismatch.prune.json'), json({
  model: 'tiny/model.json',
  method: 'l1',
  target: { flopsReduction: 0.5 },
  output: 'out/mnist',
  data: { format: 'builtin', name: 'mnist' },
}));

// A real pretrained model for sensitivity analysis: nsfwjs' MobileNetV2 (a devDependency; TF.js layers
// model shipped as JS modules: model.json as a UMD module, each weight shard as a base64 string), with
// unlabelled photos-to-be (smooth random colour fields) it is measured on by agreement with itself.
const require = createRequire(import.meta.url);
const nsfwjs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2');
if (existsSync(nsfwjs)) {
  const dir = join(target, 'mobilenet');
  mkdirSync(dir, { recursive: true });
  const modelJson = require(join(nsfwjs, 'model.min.js'));
  for (const shard of readdirSync(nsfwjs).filter((f) => /^group\d+-shard\d+of\d+\.min\.js$/.test(f))) {
    writeFileSync(join(dir, shard.replace(/\.min\.js$/, '.bin')), Buffer.from(require(join(nsfwjs, shard)), 'base64'));
  }
  for (const group of modelJson.weightsManifest) group.paths = group.paths.map((p) => `${p.replace(/^.*\//, '').replace(/(\.min\.js|\.bin)$/, '')}.bin`);
  writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson));
  const { PNG } = require('pngjs');
  const photos = join(target, 'photos');
  mkdirSync(photos, { recursive: true });
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let k = 0; k < 16; k++) {
    const png = new PNG({ width: 32, height: 32 });
    const [r, g, b, dx, dy] = [next(), next(), next(), next(), next()];
    for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
      const i = (y * 32 + x) * 4;
      const wave = 0.5 + 0.5 * Math.sin((x * dx + y * dy) / 3);
      png.data[i] = 255 * r * wave; png.data[i + 1] = 255 * g * (1 - wave); png.data[i + 2] = 255 * b; png.data[i + 3] = 255;
    }
    writeFileSync(join(photos, `photo-${k}.png`), PNG.sync.write(png));
  }
  writeFileSync(join(target, 'mobilenet.prune.json'), json({
    model: 'mobilenet/model.json',
    method: 'l1',
    target: { flopsReduction: 0.3 },
    output: 'out/mobilenet',
    data: { format: 'imagefolder', path: 'photos', validationSplit: 0 },
  }));
  // GoPrune on the same model with a tiny budget: three PAM iterations of two steps each (the auxiliary
  // variables' zero groups change at each), one fine-tuning epoch, few latency runs.
  writeFileSync(join(target, 'mobilenet-goprune.prune.json'), json({
    model: 'mobilenet/model.json',
    method: 'goprune',
    target: { flopsReduction: 0.3 },
    output: 'out/mobilenet-goprune',
    data: { format: 'imagefolder', path: 'photos', validationSplit: 0 },
    train: { epochs: 3, batchSize: 8, learningRate: 0.001 },
    finetune: { epochs: 1, batchSize: 8, learningRate: 0.001 },
    latency: { runs: 5, batchSize: 1 },
  }));
}

console.log(`fixtures: ${target} (tiny_cnn, ${model.countParams()} params${existsSync(nsfwjs) ? '; nsfwjs MobileNetV2' : ''})`);
