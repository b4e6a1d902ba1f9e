// Hazard: asymmetric ZeroPadding2D before a stride-2 "valid" convolution, as Keras' MobileNetV2
// ((0,1),(0,1)) and EfficientNet ((1,2),(1,2)) write it. The padding keeps channel c as channel c;
// removing channels must leave the padded geometry (and so every output pixel) as it was.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { loadModel } from '../../src/engine/io/index.js';
import { everyOtherUnit, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

/** conv → ZeroPadding2D(padding) → depthwise 3×3 stride 2 valid → ZeroPadding2D(padding) → conv 3×3 stride 2 valid → dense. */
function paddedNet(padding: [[number, number], [number, number]]): tf.LayersModel {
  let seed = 21;
  const init = () => tf.initializers.glorotUniform({ seed: seed++ });
  const input = tf.input({ shape: [15, 15, 3] });
  let h = tf.layers.conv2d({ name: 'stem', filters: 8, kernelSize: 3, padding: 'same', kernelInitializer: init(), biasInitializer: 'ones' }).apply(input) as tf.SymbolicTensor;
  h = tf.layers.zeroPadding2d({ name: 'pad1', padding }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, strides: 2, padding: 'valid', depthwiseInitializer: init() }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.zeroPadding2d({ name: 'pad2', padding }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.conv2d({ name: 'down', filters: 6, kernelSize: 3, strides: 2, padding: 'valid', kernelInitializer: init() }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.flatten().apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'head', units: 3, kernelInitializer: init() }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

describe('asymmetric ZeroPadding2D before stride-2 valid convolutions', () => {
  for (const padding of [[[0, 1], [0, 1]], [[1, 2], [1, 2]]] as [[number, number], [number, number]][]) {
    it(`padding ${JSON.stringify(padding)}: channel-wise, and removal is exact with the pruned geometry unchanged`, async () => {
      const model = paddedNet(padding);
      const graph = analyzeModel(model);
      for (const name of ['pad1', 'dw', 'pad2']) assert.notEqual(graph.layers.find((l) => l.name === name)!.status, 'blocked', name);
      const stem = graph.groups[graph.layers.find((l) => l.name === 'stem')!.group!];
      assert.deepEqual([...stem.members].sort(), ['down', 'dw', 'stem'], 'the padding passes the stem channels to the depthwise and on');
      const { pruned, masking, removal } = await maskThenRemove(model, graph, everyOtherUnit(graph));
      assert.ok(masking > 1e-3, 'the removed channels mattered');
      assert.ok(removal < 1e-5, `removal moved the outputs by ${removal}`);
      assert.deepEqual(pruned.getLayer('down').outputShape, model.getLayer('down').outputShape.slice(0, 3).concat([3]));
      assert.equal(countCost(pruned).params, pruned.countParams());
      model.dispose();
      pruned.dispose();
    });
  }

  it('the Keras 3 MobileNet block (ZeroPadding2D ((0,1),(0,1)) on the input before a stride-2 stem) prunes exactly', async () => {
    const { model } = await loadModel('test/fixtures/keras/mobilenet_block.keras');
    const graph = analyzeModel(model);
    const padding = model.layers.find((l) => l.getClassName() === 'ZeroPadding2D')!;
    // There the padding sits on the model input, whose channels are never removed.
    assert.match(graph.layers.find((l) => l.name === padding.name)!.reason ?? '', /model input/);
    const { pruned, removal } = await maskThenRemove(model, graph, everyOtherUnit(graph));
    assert.ok(removal < 1e-5, `removal moved the outputs by ${removal}`);
    assert.ok(pruned.countParams() < model.countParams());
    model.dispose();
    pruned.dispose();
  });
});
