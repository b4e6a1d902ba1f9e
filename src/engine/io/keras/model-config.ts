import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { unzipSync } from 'fflate';
import { firstLine, UserError } from '../../errors.js';
import { Hdf5File } from './hdf5.js';

/**
 * A Keras file's model config alone (`config.json` of a `.keras` archive, the `model_config`
 * attribute of an `.h5`), without its weights and without tfjs: the config checks and the
 * editor read the input shape and output units from it.
 */

export const RESAVE = 'Save the model again with Keras (model.save)';
const HDF5_SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_SIGNATURE = Buffer.from('PK\x03\x04', 'latin1');
export const CONFIG_JSON = 'config.json';

export type KerasJson = Record<string, unknown>;

export { isKerasModelFile } from './path.js';

function isRecord(value: unknown): value is KerasJson {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON from a Keras file (`what` names the entry or attribute); one-line UserError when it is not JSON. */
export function parseKerasJson(text: string, what: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UserError(`${what} is not valid JSON; the file is corrupt or was not written by Keras`, { file, fix: RESAVE });
  }
}

function parseModelConfig(text: string, what: string, file: string): KerasJson {
  const value = parseKerasJson(text, what, file);
  if (!isRecord(value)) throw new UserError(`${what} is not a Keras model config`, { file, fix: RESAVE });
  return value;
}

/** Refuses a file whose signature is not its extension's container: a zip for `.keras`, HDF5 for `.h5`. */
export function checkKerasSignature(bytes: Uint8Array, kind: 'keras' | 'h5', file: string): void {
  const isZip = Buffer.from(bytes.subarray(0, ZIP_SIGNATURE.length)).equals(ZIP_SIGNATURE);
  const isHdf5 = Buffer.from(bytes.subarray(0, HDF5_SIGNATURE.length)).equals(HDF5_SIGNATURE);
  if (kind === 'keras' && !isZip) {
    throw new UserError(isHdf5 ? 'is an HDF5 file named .keras; a .keras file is a zip archive' : 'is not a .keras file (a zip of config.json, model.weights.h5 and metadata.json)', {
      file, fix: isHdf5 ? 'Rename it to .h5' : RESAVE,
    });
  }
  if (kind === 'h5' && !isHdf5) throw new UserError(isZip ? 'is a zip archive (a .keras file?) named .h5' : 'is not an HDF5 file', { file, fix: isZip ? 'Rename it to .keras' : RESAVE });
}

/** The entries of a `.keras` archive (those `only` keeps, when given: the weights can be large). */
export function unzipKerasArchive(bytes: Uint8Array, file: string, only?: (name: string) => boolean): Record<string, Uint8Array> {
  checkKerasSignature(bytes, 'keras', file);
  try {
    return unzipSync(bytes, only ? { filter: (entry) => only(entry.name) } : undefined);
  } catch (err) {
    throw new UserError(`the .keras archive is truncated or corrupt (${firstLine(err)})`, { file, fix: RESAVE });
  }
}

/** The model config of an unzipped `.keras` archive (its config.json). */
export function archiveModelConfig(entries: Record<string, Uint8Array>, file: string): KerasJson {
  const config = entries[CONFIG_JSON];
  // Entries may have been filtered to config.json alone: list them only when there are some.
  const names = Object.keys(entries);
  if (!config) throw new UserError(`the .keras archive has no ${CONFIG_JSON}${names.length ? ` (it holds ${names.join(', ')})` : ''}`, { file, fix: RESAVE });
  return parseModelConfig(Buffer.from(config).toString('utf8'), CONFIG_JSON, file);
}

/** The model config of an open `.h5` file (its root `model_config` attribute). */
export function hdf5ModelConfig(h5: Hdf5File, file: string): KerasJson {
  const text = h5.stringAttribute(h5.root, 'model_config');
  if (text === undefined) {
    const weightsOnly = h5.stringListAttribute(h5.root, 'layer_names') !== undefined || h5.group('layers') !== undefined;
    throw new UserError(weightsOnly ? 'holds Keras weights only (model.save_weights), without the model config'
      : 'is an HDF5 file but not a Keras model: it has no model_config attribute', {
      file, fix: weightsOnly ? 'Save the whole model with model.save("model.h5") or model.save("model.keras")' : 'Open a model saved by Keras (model.save)',
    });
  }
  return parseModelConfig(text, 'the model_config attribute', file);
}

/** The `{class_name, config}` model config of a `.keras` or `.h5` file; one-line UserError when unreadable. */
export async function readKerasModelConfig(path: string): Promise<KerasJson> {
  const bytes = await readFile(path);
  if (extname(path).toLowerCase() === '.keras') {
    // Only config.json is inflated: the weights can be large.
    return archiveModelConfig(unzipKerasArchive(bytes, path, (name) => name === CONFIG_JSON), path);
  }
  checkKerasSignature(bytes, 'h5', path);
  const h5 = await Hdf5File.open(bytes, path);
  try {
    return hdf5ModelConfig(h5, path);
  } finally {
    h5.close();
  }
}
