// Hazard: Keras' Normalization (registered by io/keras) keeps an adapted mean and variance per channel. Between
// two convs its channels are the first conv's, and removing one removes its mean and variance; a zero channel
// comes out −mean/std, not zero. After the model input it is blocked as the input.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { KerasNormalization } from '../../src/engine/io/keras/layers.js';
import { loadModel } from '../../src/engine/io/index.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { CostTracker, countCost, unitNorms } from '../../src/engine/metrics/index.js';
import { maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

const init = (seed: number) => tf.initializers.glorotNormal({ seed });

/** conv → Normalization → relu → conv → GAP → dense, with adapted-looking statistics. */
function buildNormalized([first, second]: [number, number]): tf.LayersModel {
  const input = tf.input({ shape: [6, 6, 3] });
  let x = tf.layers.conv2d({ name: 'conv_a', filters: first, kernelSize: 3, padding: 'same', kernelInitializer: init(1), biasInitializer: 'glorotNormal' }).apply(input) as tf.SymbolicTensor;
  x = new KerasNormalization({ name: 'norm', axis: -1 }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.reLU({ name: 'relu' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv_b', filters: second, kernelSize: 3, kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 3, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: out });
  const norm = model.getLayer('norm');
  const [mean, variance, count] = norm.getWeights();
  norm.setWeights([tf.randomNormal(mean.shape, 0, 0.5, 'float32', 4), tf.randomUniform(variance.shape, 0.2, 3, 'float32', 5), count]);
  return model;
}

describe('Keras Normalization between two convs', () => {
  it('belongs to the first conv\'s group, with its mean and variance sliced per channel', () => {
    const model = buildNormalized([6, 5]);
    const graph = analyzeModel(model);
    const norm = graph.layers.find((l) => l.name === 'norm')!;
    assert.notEqual(norm.status, 'blocked', norm.reason);
    const group = graph.groups[graph.layers.find((l) => l.name === 'conv_a')!.group!];
    assert.equal(norm.group, group.id);
    assert.deepEqual(group.members, ['conv_a', 'norm', 'conv_b']);
    const slices = graph.units[group.units[3]].slices.filter((s) => s.layer === 'norm');
    assert.deepEqual(slices.map((s) => [s.weight, s.axis, s.indices]), [['mean', 0, [3]], ['variance', 0, [3]]]);
    // Adapted statistics never decide importance: the norms are the convs' alone.
    const norms = unitNorms(model, graph, 'l1');
    const layer = model.getLayer('norm');
    const [, , count] = layer.getWeights();
    layer.setWeights([tf.fill([6], 100), tf.fill([6], 100), count]);
    assert.deepEqual(unitNorms(model, graph, 'l1'), norms);
    model.dispose();
  });

  it('removing masked channels is exact, and the pruned model is the narrower one', async () => {
    const model = buildNormalized([6, 5]);
    const graph = analyzeModel(model);
    const group = (layer: string) => graph.groups[graph.layers.find((l) => l.name === layer)!.group!];
    const remove = [group('conv_a').units[0], group('conv_a').units[4], group('conv_b').units[2]];
    const predicted = new CostTracker(model, graph).costWithout(remove);
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    assert.deepEqual(pruned.getLayer('norm').getWeights().map((w) => w.shape), [[4], [4], []]);
    const narrow = buildNormalized([4, 4]);
    const counted = countCost(pruned);
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(counted.flops, countCost(narrow).flops);
    assert.deepEqual(predicted, { params: counted.params, flops: counted.flops });
    pruned.dispose();
    narrow.dispose();
    model.dispose();
  });

  it('after the model input (squeeze_excite.keras: Rescaling → Normalization) it is blocked as the input', async () => {
    const { model } = await loadModel('test/fixtures/keras/squeeze_excite.keras');
    const norm = analyzeModel(model).layers.find((l) => l.name === 'normalization')!;
    assert.equal(norm.status, 'blocked');
    assert.equal(norm.reason, 'model input');
    model.dispose();
  });
});
