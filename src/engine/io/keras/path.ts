import { extname } from 'node:path';

const KERAS_MODEL_EXTENSIONS: readonly string[] = ['.keras', '.h5', '.hdf5'];

/** Whether a path names a Keras model file; apart from model-config.ts so that checking it loads no archive or HDF5 reader. */
export function isKerasModelFile(path: string): boolean {
  return KERAS_MODEL_EXTENSIONS.includes(extname(path).toLowerCase());
}
