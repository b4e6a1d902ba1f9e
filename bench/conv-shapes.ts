/**
 * Per-shape timing of PruneLens' conv kernels on ResNet-20's layers at batch 64 (forward, dX, dW),
 * each against its alternative path in the same run, alternating to cancel the machine's drift:
 *   node --import tsx bench/conv-shapes.ts [--ab VAR=a,b,...]
 * --ab alternates an environment switch instead (read by the kernels at call time), Winograd still on.
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/engine/backend/index.js';
import { startKernelPool } from '../src/engine/backend/simd/pool.js';
import { SimdKernels } from '../src/engine/backend/simd/tfjs-kernels.js';
import { setSwitches } from '../src/engine/util/switches.js';

const SHAPES: [number, number, number, number][] = [[32, 16, 16, 1], [16, 32, 32, 1], [8, 64, 64, 1], [32, 3, 16, 1], [32, 16, 32, 2], [28, 1, 16, 1], [14, 16, 4, 1]];

async function main(): Promise<void> {
  await initBackend('wasm');
  const started = startKernelPool();
  if (!('pool' in started)) throw new Error(started.reason);
  const kernels = new SimdKernels(started.pool);
  const be = tf.backend() as never;
  for (const [hw, ci, co, stride] of SHAPES) {
    const x = tf.randomNormal([64, hw, hw, ci]), w = tf.randomNormal([3, 3, ci, co]);
    const g = tf.backend_util.computeConv2DInfo([64, hw, hw, ci], [3, 3, ci, co], stride, 1, 'same', undefined, false, 'channelsLast');
    const dy = tf.randomNormal([64, g.outHeight, g.outWidth, co]);
    const gflop = 2 * 64 * g.outHeight * g.outWidth * 9 * ci * co / 1e9;
    const time = (f: () => { dataId: object }) => {
      const t = performance.now();
      const out = f();
      const ms = performance.now() - t;
      tf.backend().disposeData(out.dataId);
      return ms;
    };
    const abAt = process.argv.indexOf('--ab');
    const [variable, values] = abAt >= 0 ? process.argv[abAt + 1].split('=') : ['PRUNELENS_WINOGRAD', '1,0'];
    const modes = values.split(',');
    const best: Record<string, { fwd: number; dx: number; dw: number }> = {};
    for (let round = 0; round < 16; round++) {
      for (const mode of modes) {
        setSwitches({ [variable]: mode });
        const b = best[mode] ??= { fwd: Infinity, dx: Infinity, dw: Infinity };
        b.fwd = Math.min(b.fwd, time(() => kernels.conv2d(be, x, w, undefined, 0, g)));
        b.dx = Math.min(b.dx, time(() => kernels.conv2dBackpropInput(be, dy, w, g)));
        b.dw = Math.min(b.dw, time(() => kernels.conv2dBackpropFilter(be, x, dy, g)));
      }
    }
    const fmt = (ms: number) => `${ms.toFixed(2)} ms (${(gflop / ms * 1000).toFixed(0)} GF/s)`;
    for (const mode of modes) {
      const b = best[mode];
      console.log(`${hw}x${hw} ${ci}->${co} s${stride} ${variable}=${mode}: fwd ${fmt(b.fwd)}  dx ${fmt(b.dx)}  dw ${fmt(b.dw)}`);
    }
    tf.dispose([x, w, dy]);
  }
  process.exit(0);
}
main();
