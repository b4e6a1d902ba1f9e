import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../../src/engine/graph/analyze.js';
import { UserError } from '../../src/engine/errors.js';
import { buildDemoCnn } from '../../src/engine/demo/model.js';
import { countCost } from '../../src/engine/metrics/index.js';
import { removeUnits } from '../../src/engine/surgery/index.js';
import { buildBlockedModel, maskThenRemove } from '../helpers/models.js';

before(async () => {
  await tf.setBackend('cpu');
});

describe('a layer the analysis does not support (Reshape)', () => {
  it('blocks only the channels it touches, names the layer in the reason, and does not throw', () => {
    const graph = analyzeModel(buildBlockedModel());
    const status = new Map(graph.layers.map((l) => [l.name, l]));
    const blocked = status.get('reshaped_conv')!;
    assert.equal(blocked.status, 'blocked');
    assert.match(blocked.reason!, /reshape \(Reshape\)/);
    assert.equal(status.get('reshape')?.status, 'blocked');
    assert.match(status.get('reshape')!.reason!, /reshape \(Reshape\)/);
    // The other branch and the dense after the reshape stay prunable.
    assert.equal(status.get('conv_a')?.status, 'prunable');
    assert.equal(status.get('bn_a')?.status, 'prunable');
    assert.equal(status.get('conv_b')?.status, 'coupled');
    assert.equal(status.get('reshape_fc')?.status, 'coupled');
    assert.ok(graph.groups.every((g) => !g.members.includes('reshape') && !g.producers.includes('reshaped_conv')));
    assert.deepEqual(graph.groups.map((g) => g.producers[0]).sort(), ['conv_a', 'conv_b', 'reshape_fc']);
  });

  it('removing all-zero units of the unblocked groups leaves outputs unchanged', async () => {
    const model = buildBlockedModel();
    const graph = analyzeModel(model);
    const byProducer = (name: string) => graph.groups.find((g) => g.producers[0] === name)!;
    const remove = [byProducer('conv_a').units[1], byProducer('conv_b').units[0], byProducer('conv_b').units[3], byProducer('reshape_fc').units[2]];
    const { pruned, masking, removal } = await maskThenRemove(model, graph, remove);
    assert.ok(masking > 1e-3, `masking should move the outputs (moved ${masking})`);
    assert.ok(removal <= 1e-5, `pruned outputs differ by ${removal}`);
    pruned.dispose();
  });

  it('pruned params and FLOPs equal the architecture built narrower', async () => {
    const model = buildBlockedModel();
    const graph = analyzeModel(model);
    const byProducer = (name: string) => graph.groups.find((g) => g.producers[0] === name)!;
    const pruned = await removeUnits(model, graph, [...byProducer('conv_a').units.slice(0, 2), byProducer('conv_b').units[4], byProducer('conv_b').units[1]]);
    const narrow = buildBlockedModel({ widths: [6, 2, 3] });
    assert.equal(pruned.countParams(), narrow.countParams());
    assert.equal(countCost(pruned).flops, countCost(narrow).flops);
    pruned.dispose();
    narrow.dispose();
  });

  it('blocks around other unsupported layers too (Permute, LayerNormalization) without throwing', () => {
    const input = tf.input({ shape: [6, 6, 3] });
    const a = tf.layers.conv2d({ name: 'before_permute', filters: 4, kernelSize: 3 }).apply(input) as tf.SymbolicTensor;
    const p = tf.layers.permute({ name: 'permute', dims: [2, 1, 3] }).apply(a) as tf.SymbolicTensor;
    const b = tf.layers.conv2d({ name: 'before_norm', filters: 5, kernelSize: 1 }).apply(p) as tf.SymbolicTensor;
    const n = tf.layers.layerNormalization({ name: 'layer_norm' }).apply(b) as tf.SymbolicTensor;
    const c = tf.layers.conv2d({ name: 'free', filters: 6, kernelSize: 1 }).apply(n) as tf.SymbolicTensor;
    const d = tf.layers.conv2d({ name: 'head', filters: 2, kernelSize: 1 }).apply(c) as tf.SymbolicTensor;
    const graph = analyzeModel(tf.model({ inputs: input, outputs: d }));
    const status = new Map(graph.layers.map((l) => [l.name, l]));
    assert.match(status.get('before_permute')!.reason!, /permute \(Permute\)/);
    assert.match(status.get('before_norm')!.reason!, /layer_norm \(LayerNormalization\)/);
    assert.equal(status.get('free')?.status, 'prunable');
    assert.deepEqual(graph.groups.map((g) => g.producers), [['free']]);
  });

  it('blocks a softmax output on the channel axis with its reason', () => {
    const graph = analyzeModel(buildDemoCnn());
    const logits = graph.layers.find((l) => l.name === 'logits')!;
    assert.equal(logits.status, 'blocked');
    assert.match(logits.reason!, /softmax/);
    assert.equal(graph.layers.find((l) => l.name === 'fc1')?.status, 'prunable');
  });

  it('excluded layers keep their output channels; unknown names are a user error', () => {
    const graph = analyzeModel(buildBlockedModel(), { exclude: ['conv_a'] });
    const convA = graph.layers.find((l) => l.name === 'conv_a')!;
    assert.equal(convA.status, 'blocked');
    assert.equal(convA.reason, 'excluded in config');
    assert.deepEqual(graph.groups.map((g) => g.producers[0]).sort(), ['conv_b', 'reshape_fc']);
    assert.throws(() => analyzeModel(buildBlockedModel(), { exclude: ['no_such_layer'] }), (err: unknown) => err instanceof UserError && /exclude/.test(err.message));
  });
});
