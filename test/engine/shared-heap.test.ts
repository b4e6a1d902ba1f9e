import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importSharedMemory } from '../../src/engine/backend/simd/shared-heap.js';

const tfjsWasm = (file: string) => new Uint8Array(readFileSync(join(require.resolve('@tensorflow/tfjs-backend-wasm'), '..', file)));

test('the wasm backend\'s module is rewritten to import a shared memory of the same size and nothing else changes', () => {
  const binary = tfjsWasm('tfjs-backend-wasm-simd.wasm');
  const rewritten = importSharedMemory(binary);
  assert.ok(rewritten);
  assert.equal(rewritten.initial, 256);
  assert.equal(rewritten.maximum, 65536);
  const before = new WebAssembly.Module(binary), after = new WebAssembly.Module(rewritten.binary);
  // The memory is now the last import; every other import and every export is as it was.
  const importsAfter = WebAssembly.Module.imports(after);
  assert.deepEqual(importsAfter.at(-1), { module: 'env', name: 'memory', kind: 'memory' });
  assert.deepEqual(importsAfter.slice(0, -1), WebAssembly.Module.imports(before));
  assert.deepEqual(WebAssembly.Module.exports(after), WebAssembly.Module.exports(before));
  // Only the memory's declaration moved: the rest of the module is byte for byte the same size.
  assert.ok(Math.abs(rewritten.binary.length - binary.length) < 32, `${binary.length} → ${rewritten.binary.length}`);
});

test('modules of another shape are left alone', () => {
  assert.equal(importSharedMemory(new Uint8Array([1, 2, 3])), undefined);
  // A module with no memory (wat: (module (func))).
  assert.equal(importSharedMemory(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0, 10, 4, 1, 2, 0, 0x0b])), undefined);
  // A rewritten module already imports its memory and has no memory section left to rewrite.
  const once = importSharedMemory(tfjsWasm('tfjs-backend-wasm-simd.wasm'))!;
  assert.equal(importSharedMemory(once.binary), undefined);
});

test('PRUNELENS_SHARED_HEAP=0 keeps the backend\'s own heap, and the kernels copy operands and still agree', () => {
  const script = `
    const tf = require('@tensorflow/tfjs');
    const { initBackend, backendInfo } = require('./src/engine/backend/index.ts');
    (async () => {
      await initBackend('wasm');
      const x = tf.randomNormal([2, 12, 12, 16], 0, 1, 'float32', 1), w = tf.randomNormal([3, 3, 16, 8], 0, 1, 'float32', 2);
      const [y, dw] = tf.tidy(() => { const f = (a) => tf.conv2d(x, a, 1, 'same'); return [f(w), tf.grad((a) => f(a).square().sum())(w)]; });
      console.log(JSON.stringify({ info: backendInfo(), y: Array.from(y.dataSync().slice(0, 64)), dw: Array.from(dw.dataSync().slice(0, 64)) }));
      process.exit(0);
    })();`;
  const run = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!);
  };
  const shared = run({}), copying = run({ PRUNELENS_SHARED_HEAP: '0' });
  assert.equal(shared.info.sharedHeap, true);
  assert.equal(copying.info.sharedHeap, false);
  assert.equal(copying.info.kernels, 'simd');
  for (const key of ['y', 'dw']) {
    shared[key].forEach((v: number, i: number) => assert.ok(Math.abs(v - copying[key][i]) <= 1e-5 * Math.max(1, Math.abs(v)), `${key}[${i}]: ${v} vs ${copying[key][i]}`));
  }
});
