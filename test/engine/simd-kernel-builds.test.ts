import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend/index.js';
import { sharedHeap } from '../../src/engine/backend/simd/index.js';
import { createKernelPool, kernelsPath, type KernelBuild, type KernelPool } from '../../src/engine/backend/simd/pool.js';
import { SimdKernels, forwardGeometry, useWinograd } from '../../src/engine/backend/simd/tfjs-kernels.js';
import { RELAXED_SIMD_FLAG, relaxedSimdExecArgv, runtimeHasRelaxedSimd } from '../../src/engine/util/relaxed-simd.js';
import { randomArray } from '../helpers/seeded.js';

const relaxedBuilt = Boolean(kernelsPath('simd', 'relaxed') && kernelsPath('inplace', 'relaxed'));

// simd-kernels.test.ts tests the build this runtime loads; this runs it again in a child on the other one:
// the plain build (PRUNELENS_RELAXED_SIMD=0) where the runtime has relaxed SIMD, else the relaxed build
// under Node's flag where this Node has one for it.
test('the kernel tests (forward and gradients against tfjs\' cpu kernels, bit-for-bit repeatable training) pass on the other build too', {
  skip: !relaxedBuilt && 'the relaxed-SIMD kernels were not built (clang 16+)',
}, () => {
  const other: KernelBuild = runtimeHasRelaxedSimd() ? 'plain' : 'relaxed';
  const flags = other === 'relaxed' ? relaxedSimdExecArgv([]) : [];
  if (other === 'relaxed' && flags.length === 0) {
    assert.fail(`this runtime (Node ${process.versions.node}) has neither relaxed SIMD nor ${RELAXED_SIMD_FLAG}`);
  }
  // Without NODE_TEST_CONTEXT, which would make the child report to this runner instead of running its tests.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env;
  const env = { ...inherited, PRUNELENS_RELAXED_SIMD: other === 'relaxed' ? '1' : '0' };
  const r = spawnSync(process.execPath, [...flags, '--import', 'tsx', '--test', '--test-reporter=tap', 'test/engine/simd-kernels.test.ts'], {
    encoding: 'utf8', env, timeout: 600_000,
  });
  assert.match(r.stdout, /^# pass 1[0-9]$/m, `the child ran every kernel test:\n${r.stdout.slice(-2000)}`);
  assert.equal(r.status, 0, `the ${other} build's kernel tests failed:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-2000)}`);
});

test('a child of this runtime (the engine process, the CLI\'s training commands) gets Node\'s relaxed-SIMD flag only where it needs one, and then has relaxed SIMD', () => {
  const flags = relaxedSimdExecArgv([]);
  const major = Number(process.versions.node.split('.')[0]);
  const given = process.execArgv.includes(RELAXED_SIMD_FLAG);
  assert.deepEqual(flags, given || (!runtimeHasRelaxedSimd() && major < 22) ? [RELAXED_SIMD_FLAG] : []);
  assert.deepEqual(relaxedSimdExecArgv([RELAXED_SIMD_FLAG]), [], 'no second flag where it is set');
  const probe = "import('./src/engine/util/relaxed-simd.ts').then((m) => console.log((m.runtimeHasRelaxedSimd ? m : m.default).runtimeHasRelaxedSimd()))";
  const r = spawnSync(process.execPath, [...flags, '--import', 'tsx', '-e', probe], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), major >= 16 ? 'true' : 'false', `Node ${process.versions.node} with ${flags.join(' ') || 'no flags'}`);
});

/** A 2-thread pool of one build on the backend's shared heap. */
function poolOf(build: KernelBuild): KernelPool {
  const started = createKernelPool(2, sharedHeap(), build);
  assert.ok('pool' in started, 'reason' in started ? started.reason : '');
  return started.pool;
}

test('where the runtime has relaxed SIMD, the relaxed build fuses: its GEMM and Winograd results differ from plain SIMD\'s in the last bits only, and repeat exactly', {
  skip: (!runtimeHasRelaxedSimd() && `this runtime has no relaxed SIMD (run with ${RELAXED_SIMD_FLAG} on Node 20–21)`) || (!relaxedBuilt && 'the relaxed-SIMD kernels were not built'),
}, async () => {
  await initBackend('wasm');
  const be = tf.backend() as never;
  const [plain, relaxed] = (['plain', 'relaxed'] as const).map((build) => new SimdKernels(poolOf(build)));
  for (const [shape, k, co] of [[[4, 16, 16, 32], 3, 48], [[4, 12, 12, 40], 1, 24]] as const) {
    const wShape = [k, k, shape[3], co];
    const g = tf.backend_util.computeConv2DInfo(shape as never, wShape as never, 1, 1, 'same', undefined, false, 'channelsLast');
    assert.equal(useWinograd(forwardGeometry(g)), k === 3);
    const x = tf.tensor(randomArray([...shape], 71).values, [...shape]), w = tf.tensor(randomArray(wShape, 72).values, wShape);
    const run = (kernels: SimdKernels) => {
      const y = tf.engine().makeTensorFromTensorInfo(kernels.conv2d(be, x, w, undefined, 0, g));
      const values = y.dataSync().slice() as Float32Array;
      y.dispose();
      return values;
    };
    const a = run(plain), b = run(relaxed), again = run(relaxed);
    assert.ok(b.every((v, i) => Object.is(v, again[i])), `${k}×${k}: the relaxed build repeats bit for bit`);
    let differ = 0, worst = 0, scale = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) differ++;
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
    // Fused multiply-add rounds once per term: on an FMA CPU most of these sums of hundreds of terms differ in the last bits.
    assert.ok(differ > a.length / 10, `${k}×${k}: ${differ} of ${a.length} outputs differ (the relaxed build's multiply-add is fused)`);
    assert.ok(worst / scale < 1e-5, `${k}×${k}: plain and relaxed differ by ${worst / scale} of the largest output`);
    tf.dispose([x, w]);
  }
});
