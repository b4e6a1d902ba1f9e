import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { planReluFusion } from '../../src/engine/backend/simd/fusion.js';
import { setSwitches } from '../../src/engine/util/switches.js';
import { randomizeBatchNorms } from '../helpers/models.js';

/**
 * Every way a layer can sit before a ReLU: fusable (BN → ReLU, BN → Activation('relu'), Add → ReLU,
 * BN → ReLU capped at 6) and not (BN also a model output, BN feeding two layers, ReLU capped at 3,
 * a three-input Add, BN → Add). `channels` not a multiple of 4 exercises the kernels' scalar tails.
 */
function buildModel(channels: number, size: number): tf.LayersModel {
  let seed = 11;
  const conv = (x: tf.SymbolicTensor, name: string) => tf.layers.conv2d({ name, filters: channels, kernelSize: 3, padding: 'same',
    useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: seed++ }) }).apply(x) as tf.SymbolicTensor;
  const bn = (x: tf.SymbolicTensor, name: string) => tf.layers.batchNormalization({ name }).apply(x) as tf.SymbolicTensor;
  const relu = (x: tf.SymbolicTensor, name: string, maxValue?: number) => tf.layers.reLU({ name, maxValue }).apply(x) as tf.SymbolicTensor;
  const input = tf.input({ shape: [size, size, 3] });
  const stem = relu(bn(conv(input, 'stem_conv'), 'bn_relu'), 'stem_relu');
  const inner = tf.layers.activation({ name: 'act', activation: 'relu' }).apply(bn(conv(stem, 'c1'), 'bn_activation')) as tf.SymbolicTensor;
  const residual = bn(conv(inner, 'c2'), 'bn_into_add');
  const block = relu(tf.layers.add({ name: 'add_relu' }).apply([residual, stem]) as tf.SymbolicTensor, 'block_relu');
  const exposed = bn(conv(block, 'c3'), 'bn_output');
  const capped = relu(bn(conv(block, 'c4'), 'bn_relu6'), 'relu6', 6);
  const capped3 = relu(bn(conv(block, 'c6'), 'bn_relu3'), 'relu3', 3);
  const forked = bn(conv(block, 'c5'), 'bn_forked');
  const three = relu(tf.layers.add({ name: 'add3' }).apply([relu(forked, 'fork_relu'), forked, capped, capped3]) as tf.SymbolicTensor, 'three_relu');
  const pooled = tf.layers.globalAveragePooling2d({}).apply(tf.layers.add({}).apply([relu(exposed, 'exposed_relu'), three]) as tf.SymbolicTensor);
  const logits = tf.layers.dense({ units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: seed++ }) }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: [logits, exposed] });
}

function lossAndGradients(model: tf.LayersModel, x: tf.Tensor): { loss: number; grads: Record<string, Float32Array> } {
  const { value, grads } = tf.variableGrads(() => {
    const [logits, exposed] = model.apply(x, { training: true }) as tf.Tensor[];
    return tf.add(tf.mean(tf.square(logits)), tf.mean(tf.abs(exposed))) as tf.Scalar;
  }, model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val));
  const out = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.dataSync() as Float32Array])) };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function withFusion<T>(on: boolean, run: () => T): T {
  const restore = setSwitches({ PRUNELENS_FUSE_RELU: on ? '1' : '0' });
  try { return run(); } finally { restore(); }
}

test('the plan fuses a ReLU only into a BatchNormalization or two-input Add whose output nothing else reads', () => {
  const model = buildModel(5, 6);
  const fused = [...planReluFusion(model)].map(([layer, kind]) => `${(layer as tf.layers.Layer).name}:${kind}`).sort();
  assert.deepEqual(fused, ['add_relu:1', 'bn_activation:1', 'bn_relu6:2', 'bn_relu:1']);
  model.dispose();
});

for (const [channels, size, batch, path] of [[5, 6, 3, 'one thread'], [18, 24, 8, 'threaded']] as const) {
  test(`fused ReLUs (${path} batch norm, ${channels} channels) give bit-identical outputs and gradients, and run fewer kernels`, async () => {
    assert.equal(await initBackend('wasm'), 'wasm');
    const model = buildModel(channels, size);
    randomizeBatchNorms(model);
    // γ about 5 puts about a quarter of bn_relu6's outputs above 6: the cap clips them and masks their gradient.
    const capped = model.getLayer('bn_relu6');
    capped.setWeights(tf.tidy(() => capped.getWeights().map((w, i) => (i === 0 ? w.mul(5) : w.clone()))));
    const x = tf.randomNormal([batch, size, size, 3], 0, 1, 'float32', 5);
    const kernels = async (on: boolean) => (await tf.profile(() => { withFusion(on, () => lossAndGradients(model, x)); })).kernels.map((k) => k.name);
    const [fusedKernels, plainKernels] = [await kernels(true), await kernels(false)];
    const count = (names: string[], name: string) => names.filter((n) => n === name).length;
    assert.equal(count(fusedKernels, 'PruneLensAddRelu'), 1, fusedKernels.join(' '));
    assert.equal(count(plainKernels, 'Relu') - count(fusedKernels, 'Relu'), 4, 'four ReLUs fused away (the ReLU6 one of them)');
    assert.equal(count(plainKernels, 'ClipByValue') - count(fusedKernels, 'ClipByValue'), 1, 'the ReLU6\'s cap fused away');
    assert.equal(count(plainKernels, 'PruneLensReluGrad') - count(fusedKernels, 'PruneLensReluGrad'), 3, 'three ReLU gradients folded into batch norm');
    assert.equal(count(plainKernels, 'PruneLensClipGrad') - count(fusedKernels, 'PruneLensClipGrad'), 1, 'the cap\'s gradient folded into batch norm');

    // The moving statistics move with every training call: give both runs the same start.
    const start = model.getWeights().map((w) => w.clone());
    const fused = withFusion(true, () => lossAndGradients(model, x));
    model.setWeights(start);
    const plain = withFusion(false, () => lossAndGradients(model, x));
    assert.equal(fused.loss, plain.loss);
    assert.deepEqual(Object.keys(fused.grads).sort(), Object.keys(plain.grads).sort());
    for (const name of Object.keys(plain.grads)) {
      const [a, b] = [fused.grads[name], plain.grads[name]];
      assert.ok(a.some((v) => v !== 0), `${name}: the gradient is not all zero`);
      a.forEach((v, i) => assert.ok(v === b[i], `${name}[${i}]: ${v} fused vs ${b[i]}`));
    }
    tf.dispose([x, ...start]);
    model.dispose();
  });
}

test('inference and other backends keep tf.layers\' own path', async () => {
  const model = buildModel(5, 6);
  const x = tf.randomNormal([2, 6, 6, 3], 0, 1, 'float32', 9);
  assert.equal(await initBackend('wasm'), 'wasm');
  const wasmKernels = (await tf.profile(() => tf.dispose(model.apply(x, { training: false }) as tf.Tensor[]))).kernelNames;
  assert.ok(!wasmKernels.includes('PruneLensAddRelu') && wasmKernels.includes('Relu'), wasmKernels.join(' '));
  assert.equal(await initBackend('cpu'), 'cpu');
  const expected = (model.apply(x, { training: true }) as tf.Tensor[]).map((t) => t.dataSync());
  const cpuKernels = (await tf.profile(() => tf.dispose(model.apply(x, { training: true }) as tf.Tensor[]))).kernelNames;
  assert.ok(!cpuKernels.some((n) => n.startsWith('PruneLens')), cpuKernels.join(' '));
  assert.equal(await initBackend('wasm'), 'wasm');
  const got = (model.apply(x, { training: true }) as tf.Tensor[]).map((t) => t.dataSync());
  got.forEach((values, o) => values.forEach((v, i) => assert.ok(Math.abs(v - expected[o][i]) < 1e-4, `output ${o}[${i}]: ${v} vs ${expected[o][i]}`)));
  tf.dispose(x);
  model.dispose();
  await initBackend('cpu');
});
