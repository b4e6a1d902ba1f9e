import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../config/types.js';

/** Initialises the tensor backend and returns the name of the backend in use. */
export async function initBackend(preference: BackendName = 'auto'): Promise<string> {
  // Placeholder until the backend module lands: the CPU backend always works.
  void preference;
  await tf.setBackend('cpu');
  await tf.ready();
  return tf.getBackend();
}
