import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { unzipSync } from 'fflate';
import { UserError } from '../../errors.js';
import { Hdf5File } from './hdf5.js';

/**
 * A Keras file's model config alone (`config.json` of a `.keras` archive, the `model_config`
 * attribute of an `.h5`), without its weights and without tfjs: the config checks and the
 * editor read the input shape and output units from it.
 */

const KERAS_MODEL_EXTENSIONS: readonly string[] = ['.keras', '.h5', '.hdf5'];
const RESAVE = 'Save the model again with Keras (model.save)';

export function isKerasModelFile(path: string): boolean {
  return KERAS_MODEL_EXTENSIONS.includes(extname(path).toLowerCase());
}

function parseConfig(text: string, what: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UserError(`${what} is not valid JSON; the file is corrupt or was not written by Keras`, { file, fix: RESAVE });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UserError(`${what} is not a Keras model config`, { file, fix: RESAVE });
  return value as Record<string, unknown>;
}

/** The `{class_name, config}` model config of a `.keras` or `.h5` file; one-line UserError when unreadable. */
export async function readKerasModelConfig(path: string): Promise<Record<string, unknown>> {
  const bytes = await readFile(path);
  if (extname(path).toLowerCase() === '.keras') {
    let entries: Record<string, Uint8Array>;
    try {
      // Only config.json is inflated: the weights can be large.
      entries = unzipSync(bytes, { filter: (entry) => entry.name === 'config.json' });
    } catch (err) {
      throw new UserError(`is not a readable .keras archive (${String((err as Error).message ?? err).split('\n')[0]})`, { file: path, fix: RESAVE });
    }
    const config = entries['config.json'];
    if (!config) throw new UserError('the .keras archive has no config.json', { file: path, fix: RESAVE });
    return parseConfig(Buffer.from(config).toString('utf8'), 'config.json', path);
  }
  const h5 = await Hdf5File.open(bytes, path);
  try {
    const text = h5.stringAttribute(h5.root, 'model_config');
    if (text === undefined) throw new UserError('has no model_config attribute: it is not a whole Keras model', { file: path, fix: 'Save the whole model with model.save("model.h5") or model.save("model.keras")' });
    return parseConfig(text, 'the model_config attribute', path);
  } finally {
    h5.close();
  }
}
