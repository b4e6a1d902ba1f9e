import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makeWorkspace, tinyTrainingConfig, ensureBuilt } from '../helpers/fixtures.js';
import { encodeNpy } from '../../src/engine/data/index.js';

const cli = resolve('dist/cli.js');
before(() => ensureBuilt());

function prunelens(args: string[], cwd?: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('analyze --json prints one object with params, flops, layers and groups', async () => {
  const ws = await makeWorkspace();
  const r = prunelens(['analyze', ws.modelPath, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  assert.ok(result.params > 0 && result.flops > 0);
  const conv1 = result.layers.find((l: { name: string }) => l.name === 'conv1');
  assert.equal(conv1.status, 'prunable');
  assert.equal(typeof conv1.group, 'number');
  const out = result.layers.find((l: { name: string }) => l.name === 'out');
  assert.equal(out.status, 'blocked');
  assert.match(out.reason, /softmax|output/);
  for (const layer of result.layers) for (const key of ['name', 'type', 'params', 'flops', 'status']) assert.ok(key in layer, `layer has ${key}`);
  assert.ok(result.groups.length >= 3 && result.groups.every((g: { id: number; members: string[]; channels: number }) => g.members.length > 0 && g.channels > 0));
});

test('analyze prints a readable table by default', async () => {
  const ws = await makeWorkspace();
  const r = prunelens(['analyze', ws.modelPath]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /layer\s+type\s+params\s+FLOPs/);
  assert.match(r.stdout, /conv1\s+Conv2D/);
  assert.match(r.stdout, /prunable channel groups/);
});

test('prune --json prints NDJSON events ending in done with output and before/after', async () => {
  const ws = await makeWorkspace();
  const config = ws.writeConfig(tinyTrainingConfig);
  const r = prunelens(['prune', config, '--json']);
  assert.equal(r.code, 0, r.stderr + r.stdout.slice(-500));
  const lines = r.stdout.trim().split('\n');
  const events = lines.map((l) => JSON.parse(l));
  const done = events[events.length - 1];
  assert.equal(done.type, 'done');
  assert.equal(done.output, join(ws.dir, 'pruned', 'model.json'));
  assert.ok(existsSync(done.output));
  for (const side of ['before', 'after']) assert.ok(done[side].params > 0 && done[side].flops > 0);
  assert.ok(done.after.flops < done.before.flops);
  assert.ok(events.some((e) => e.type === 'start') && events.some((e) => e.type === 'layers'));
  // The live events pass through: the method's sparsity and the session's one progress, ending at 1.
  assert.ok(events.some((e) => e.type === 'sparsity' && e.method === 'l1' && e.groups.length > 0));
  const progress = events.filter((e) => e.type === 'progress');
  assert.ok(progress.length > 0 && progress[progress.length - 1].progress === 1);
});

test('prune prints readable progress and a before/after table by default', async () => {
  const ws = await makeWorkspace();
  const r = prunelens(['prune', ws.writeConfig({ ...tinyTrainingConfig, finetune: { epochs: 0 } })]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /» prune/);
  assert.match(r.stdout, /FLOPs\s+\S+\s+\S+\s+−\d+\.\d%/, "FLOPs before, after and the reduction");
  assert.match(r.stdout, /channels physically removed/);
  assert.match(r.stdout, /^Speed vs FLOPs: FLOPs −\d+\.\d% (but|and) \d+\.\d\d× .*\(efficiency \d+\.\d\d\).*\(layers timed alone on TF\.js cpu, batch 1, median of 5 runs\)\.$/m, 'the "why not faster" note');
});

test('accuracy on synthetic data is labelled meaningless in the output and the report; real data is not', async () => {
  const ws = await makeWorkspace();
  const quick = { ...tinyTrainingConfig, train: undefined, finetune: { epochs: 0 } };
  const synthetic = prunelens(['prune', ws.writeConfig(quick)]);
  assert.equal(synthetic.code, 0, synthetic.stderr);
  assert.match(synthetic.stdout, /^Data: synthetic \(pipeline check only; accuracy is meaningless\)/m);
  assert.match(synthetic.stdout, /^top-1 on synthetic data \(meaningless\)\s+\d+\.\d\d%/m);
  const report = JSON.parse(readFileSync(join(ws.dir, 'pruned', 'pruning-report.json'), 'utf8'));
  assert.equal(report.syntheticData, true);
  assert.match(report.data, /^synthetic/);
  assert.ok(report.notes.some((n: string) => /synthetic data/.test(n)), JSON.stringify(report.notes));

  const labels = Int32Array.from({ length: 24 }, (_, i) => i % 3);
  writeFileSync(join(ws.dir, 'x.npy'), encodeNpy(Float32Array.from({ length: 24 * 64 }, (_, i) => (i % 7) / 7), [24, 8, 8, 1]));
  writeFileSync(join(ws.dir, 'y.npy'), encodeNpy(labels, [24]));
  const real = prunelens(['prune', ws.writeConfig({ ...quick, output: 'pruned-npy', data: { format: 'npy', x: 'x.npy', y: 'y.npy' } }, 'npy.prune.json')]);
  assert.equal(real.code, 0, real.stderr);
  assert.match(real.stdout, /^top-1\s+\d+\.\d\d%/m);
  assert.doesNotMatch(real.stdout, /synthetic|meaningless/);
  assert.equal(JSON.parse(readFileSync(join(ws.dir, 'pruned-npy', 'pruning-report.json'), 'utf8')).syntheticData, false);
});

test('a failing prune exits non-zero with a one-line error', async () => {
  const ws = await makeWorkspace();
  const config = ws.writeConfig({ ...tinyTrainingConfig, target: { flopsReduction: 2 } });
  const json = prunelens(['prune', config, '--json']);
  assert.notEqual(json.code, 0);
  const lines = json.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const event = JSON.parse(lines[0]);
  assert.equal(event.type, 'error');
  assert.match(event.message, /tiny\.prune\.json: target\.flopsReduction/);

  const human = prunelens(['prune', config]);
  assert.notEqual(human.code, 0);
  assert.equal(human.stderr.trim().split('\n').length, 1, human.stderr);
  assert.doesNotMatch(human.stderr, /\s+at /);
});

test('a malformed model is one clear line from analyze', async () => {
  const ws = await makeWorkspace();
  const bad = join(ws.dir, 'bad.json');
  writeFileSync(bad, '{"format": "graph-model", "modelTopology": {}}');
  const r = prunelens(['analyze', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.json/);
  assert.match(r.stderr, /graph model/i);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('analyze keeps tfjs\' banner off stderr: a model tfjs has started building fails in one line, a good one prints nothing there', async () => {
  const ws = await makeWorkspace();
  const json = JSON.parse(readFileSync(ws.modelPath, 'utf8'));
  json.weightsManifest[0].weights[0].name = 'renamed/kernel';
  const mismatched = join(ws.dir, 'model', 'mismatched.json');
  writeFileSync(mismatched, JSON.stringify(json));
  const bad = prunelens(['analyze', mismatched]);
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
  assert.match(bad.stderr, /^prunelens: .*mismatched\.json: weight conv1\/kernel is required by the topology/);
  const good = prunelens(['analyze', ws.modelPath]);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(good.stderr, '');
});

test('unknown commands print usage and exit 2', () => {
  const r = prunelens(['shrink']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Usage:/);
});
