// Hazard: the element-wise layers of the Keras applications zoo as io/keras converts them (Activation with
// relu, relu6, silu → swish, sigmoid, Keras 3's hard_sigmoid and hard_silu, gelu, tanh; ReLU(max_value);
// ReLU(negative_slope) → LeakyReLU; Dropout with a channel-wise noise_shape) pass channel c through as
// channel c; a softmax across channels blocks. Whether a zero channel stays zero depends on the activation.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
// Registers Keras 3's hard_sigmoid and hard_silu, as loading a Keras file does; layers name them by class.
import '../../src/engine/io/keras/layers.js';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { preservesZero } from '../../src/engine/layers/index.js';
import { maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

const init = (seed: number) => tf.initializers.glorotNormal({ seed });

/** conv → the layer under test → conv → GAP → dense. */
function buildAround(layer: tf.layers.Layer): tf.LayersModel {
  const input = tf.input({ shape: [5, 5, 3] });
  let x = tf.layers.conv2d({ name: 'conv_a', filters: 6, kernelSize: 3, padding: 'same', kernelInitializer: init(1), biasInitializer: 'glorotNormal' }).apply(input) as tf.SymbolicTensor;
  x = layer.apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ name: 'conv_b', filters: 4, kernelSize: 3, kernelInitializer: init(2) }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'out', units: 3, kernelInitializer: init(3) }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

const activation = (name: string) => tf.layers.activation({ name: 'under_test', activation: name as 'relu' });

/** [what, layer, whether a zero channel comes out zero] */
const CHANNELWISE: [string, () => tf.layers.Layer, boolean][] = [
  ['Activation relu', () => activation('relu'), true],
  ['Activation relu6', () => activation('relu6'), true],
  ['Activation swish (Keras 3 silu)', () => activation('swish'), true],
  ['Activation sigmoid', () => activation('sigmoid'), false],
  ['Activation hard_sigmoid (Keras 3)', () => activation('relu6HardSigmoid'), false],
  ['Activation hard_sigmoid (Keras 2)', () => activation('hardSigmoid'), false],
  ['Activation hard_silu', () => activation('hardSilu'), true],
  ['Activation gelu', () => activation('gelu'), true],
  ['Activation tanh', () => activation('tanh'), true],
  ['ReLU(max_value=6)', () => tf.layers.reLU({ name: 'under_test', maxValue: 6 }), true],
  ['ReLU(negative_slope) as LeakyReLU', () => tf.layers.leakyReLU({ name: 'under_test', alpha: 0.1 }), true],
  ['Dropout(noise_shape=(None, 1, 1, 1))', () => tf.layers.dropout({ name: 'under_test', rate: 0.3, noiseShape: [null as unknown as number, 1, 1, 1] }), true],
];

describe('element-wise layers of the Keras zoo', () => {
  for (const [what, make, keepsZero] of CHANNELWISE) {
    it(`${what} ties channel c of its input to channel c of its output; removal is exact`, async () => {
      const model = buildAround(make());
      const graph = analyzeModel(model);
      const info = graph.layers.find((l) => l.name === 'under_test')!;
      assert.notEqual(info.status, 'blocked', info.reason);
      const group = graph.groups[graph.layers.find((l) => l.name === 'conv_a')!.group!];
      assert.equal(info.group, group.id);
      assert.deepEqual(group.members, ['conv_a', 'conv_b']);
      assert.equal(preservesZero(model.getLayer('under_test')), keepsZero, 'whether a zero channel stays zero');
      const { pruned, masking, removal } = await maskThenRemove(model, graph, [group.units[1], group.units[4]]);
      assert.ok(masking > 1e-4, `masking should move the outputs (moved ${masking})`);
      assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
      assert.equal((pruned.getLayer('conv_a').getConfig() as { filters: number }).filters, 4);
      pruned.dispose();
      model.dispose();
    });
  }

  it('Activation softmax across the channels blocks them and says so', () => {
    const model = buildAround(activation('softmax'));
    const info = analyzeModel(model).layers.find((l) => l.name === 'conv_a')!;
    assert.equal(info.status, 'blocked');
    assert.equal(info.reason, 'under_test (Activation) applies softmax across channels, so its channels cannot be removed');
    model.dispose();
  });
});
