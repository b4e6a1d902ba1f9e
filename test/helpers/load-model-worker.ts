/**
 * Loads one model in a worker thread and posts how it ended and how long it took, so a test can
 * bound a load that would otherwise spin the test's own thread forever.
 */
import * as tf from '@tensorflow/tfjs';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError } from '../../src/engine/errors.js';
import { loadModel } from '../../src/engine/io/index.js';

export interface LoadOutcome {
  loaded: boolean;
  message?: string;
  userError?: boolean;
  ms: number;
}

async function run(): Promise<LoadOutcome> {
  await tf.setBackend('cpu');
  const started = performance.now();
  try {
    const { model } = await loadModel(workerData as string);
    model.dispose();
    return { loaded: true, ms: performance.now() - started };
  } catch (err) {
    const ms = performance.now() - started;
    return { loaded: false, message: describeError(err), userError: (err as Error).name === 'UserError', ms };
  }
}

void run().then((outcome) => parentPort!.postMessage(outcome));
