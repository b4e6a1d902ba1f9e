import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { removeUnits, zeroUnits } from '../../src/engine/surgery/index.js';
import { everyOtherUnit, maxOutputDiff, randomInput, randomizeBatchNorms } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

/**
 * conv (max-norm constrained kernel) → BN → ReLU → conv → GAP → dense, as a functional model (surgery
 * builds it layer by layer, each weight created with its pruned value) or as a Sequential one (tfjs'
 * fromConfig, weights written after the build). Same seeds, so the same weights.
 */
function build(kind: 'functional' | 'sequential'): tf.LayersModel {
  const layers = () => [
    tf.layers.conv2d({ name: 'conv_a', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.randomNormal({ stddev: 2, seed: 1 }), kernelConstraint: tf.constraints.maxNorm({ maxValue: 1, axis: 0 }) }),
    tf.layers.batchNormalization({ name: 'bn_a' }),
    tf.layers.reLU({ name: 'relu_a' }),
    tf.layers.conv2d({ name: 'conv_b', filters: 5, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotNormal({ seed: 2 }) }),
    tf.layers.globalAveragePooling2d({ name: 'gap' }),
    tf.layers.dense({ name: 'fc', units: 3, kernelInitializer: tf.initializers.glorotNormal({ seed: 3 }) }),
  ];
  let model: tf.LayersModel;
  if (kind === 'sequential') {
    const [first, ...rest] = layers();
    model = tf.sequential({ layers: [tf.layers.inputLayer({ inputShape: [8, 8, 3], name: 'image' }), first, ...rest] });
  } else {
    const input = tf.input({ shape: [8, 8, 3], name: 'image' });
    model = tf.model({ inputs: input, outputs: layers().reduce((x, layer) => layer.apply(x) as tf.SymbolicTensor, input) });
  }
  randomizeBatchNorms(model);
  return model;
}

const weightsOf = (model: tf.LayersModel) => model.weights.map((w) => ({ name: w.originalName, shape: w.shape, values: [...w.read().dataSync()] }));

describe('surgery builds the pruned model once', () => {
  it('the layer-by-layer build (weights created with their values) and tfjs\' fromConfig give the same model, constraints applied', async () => {
    const functional = build('functional');
    const sequential = build('sequential');
    assert.deepEqual(weightsOf(functional), weightsOf(sequential), 'the same weights to start from');
    const [gf, gs] = [analyzeModel(functional), analyzeModel(sequential)];
    const removed = everyOtherUnit(gf);
    assert.deepEqual(removed, everyOtherUnit(gs));
    const [pf, ps] = [await removeUnits(functional, gf, removed), await removeUnits(sequential, gs, removed)];
    assert.equal(pf.constructor, tf.LayersModel);
    assert.ok(ps instanceof tf.Sequential, 'a Sequential model stays Sequential');
    assert.deepEqual(weightsOf(pf), weightsOf(ps));
    assert.deepEqual(pf.layers.map((l) => l.getConfig()), ps.layers.map((l) => l.getConfig()));
    // The constraint holds on the pruned kernel as setWeights would leave it: every column along the kernel's first axis at norm 1 or less.
    const kernel = pf.getLayer('conv_a').getWeights()[0];
    const norms = tf.tidy(() => kernel.square().sum(0).sqrt().dataSync());
    assert.ok([...norms].every((n) => n <= 1 + 1e-5), `kernel norms ${[...norms]}`);
    // The source model is untouched, and the pruned one runs.
    const x = randomInput(pf);
    assert.ok(Number.isFinite(maxOutputDiff(pf, ps, x)) && maxOutputDiff(pf, ps, x) === 0);
    assert.deepEqual(weightsOf(functional), weightsOf(build('functional')));
    x.dispose();
    for (const m of [functional, sequential, pf, ps]) m.dispose();
  });

  it('a failed build leaves no variables behind', async () => {
    const model = build('functional');
    const graph = analyzeModel(model);
    // A graph that claims fewer channels than the kernel has: the narrowed config disagrees with the sliced weights.
    const bad = { ...graph, layers: graph.layers.map((l) => (l.name === 'conv_a' ? { ...l } : l)), sliceTable: { ...graph.sliceTable!, keys: graph.sliceTable!.keys.map((k) => (k.layer === 'conv_b' && k.role === 'consumer' ? { ...k, axis: 3 } : k)) } };
    const before = tf.memory().numTensors;
    await assert.rejects(removeUnits(model, bad, everyOtherUnit(graph)), /Surgery produced|expects/);
    assert.equal(tf.memory().numTensors, before);
    model.dispose();
  });
});

it('a functional model with a wrapper layer (Bidirectional LSTM after a reshape) is pruned like the masked one', async () => {
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  let x = tf.layers.conv2d({ name: 'conv_a', filters: 6, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) }).apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv_b', filters: 4, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotNormal({ seed: 5 }) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reshape({ name: 'rows', targetShape: [8, 32] }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.bidirectional({ name: 'birnn', layer: tf.layers.lstm({ units: 3 }) as tf.RNN }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: x });
  const graph = analyzeModel(model);
  const units = everyOtherUnit(graph).filter((u) => graph.groups[graph.units[u].group].producers.includes('conv_a'));
  assert.ok(units.length > 0, 'conv_a has prunable channels');
  const pruned = await removeUnits(model, graph, units);
  assert.equal(pruned.getLayer('birnn').getClassName(), 'Bidirectional');
  assert.equal((pruned.getLayer('conv_a').getConfig() as { filters: number }).filters, 6 - units.length);
  const input2 = randomInput(model, 2);
  // conv_a's removed channels feed only conv_b: zeroing them first makes both models the same function.
  zeroUnits(model, graph, units);
  assert.ok(maxOutputDiff(model, pruned, input2) < 1e-5);
  tf.dispose(input2);
  pruned.dispose();
  model.dispose();
});
