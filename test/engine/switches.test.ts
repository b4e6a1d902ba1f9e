import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setSwitches, switches } from '../../src/engine/util/switches.js';

/** The switches a fresh process reads from the given environment. */
function readIn(env: Record<string, string>): unknown {
  const script = "import('./src/engine/util/switches.ts').then((m) => console.log(JSON.stringify((m.switches ? m : m.default).switches())))";
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PRUNELENS_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', env: { ...clean, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('the PRUNELENS_* variables are read in one place, each as documented', () => {
  assert.deepEqual(readIn({}), { simdKernels: true, relaxedSimd: true, winograd: true, sharedHeap: true, fuseRelu: true, debug: false });
  assert.deepEqual(readIn({
    PRUNELENS_THREADS: '3', PRUNELENS_SIMD_KERNELS: '0', PRUNELENS_RELAXED_SIMD: '0', PRUNELENS_WINOGRAD: '0', PRUNELENS_SHARED_HEAP: '0', PRUNELENS_FUSE_RELU: '0', PRUNELENS_DEBUG: '1',
  }), { threads: 3, simdKernels: false, relaxedSimd: false, winograd: false, sharedHeap: false, fuseRelu: false, debug: true });
  assert.deepEqual(readIn({ PRUNELENS_THREADS: 'many', PRUNELENS_WINOGRAD: '1' }), { simdKernels: true, relaxedSimd: true, winograd: true, sharedHeap: true, fuseRelu: true, debug: false });
});

test('setSwitches changes switches in the environment\'s terms and restores them', () => {
  const before = switches().winograd;
  const restore = setSwitches({ PRUNELENS_WINOGRAD: before ? '0' : '1' });
  assert.equal(switches().winograd, !before);
  const unset = setSwitches({ PRUNELENS_WINOGRAD: undefined });
  assert.equal(switches().winograd, true, 'an unset switch takes its default');
  unset();
  restore();
  assert.equal(switches().winograd, before);
  assert.throws(() => setSwitches({ PRUNELENS_WINOGRAAD: '0' }), /unknown switch PRUNELENS_WINOGRAAD; known: PRUNELENS_THREADS/);
});
