/**
 * The on-disk TF.js layers format as PruneLens reads and writes it. These are plain JSON
 * shapes, kept apart from the runtime objects (`tf.LayersModel`, tensors) they describe.
 */

export const MODEL_JSON = 'model.json';
export const LAYERS_MODEL_FORMAT = 'layers-model';

/** Shards are split at 4 MiB, as the TF.js converter does. */
export const SHARD_BYTES = 4 * 1024 * 1024;

/** Weight dtypes a layers model can hold, with their bytes per value. */
export const WEIGHT_DTYPE_BYTES: Readonly<Record<WeightDtype, number>> = { float32: 4, int32: 4, bool: 1 };
export type WeightDtype = 'float32' | 'int32' | 'bool';

/** Storage dtypes of quantized weights (the converter's `--quantize_*` options). */
export const QUANTIZED_DTYPE_BYTES: Readonly<Record<QuantizedDtype, number>> = { uint8: 1, uint16: 2, float16: 2 };
export type QuantizedDtype = 'uint8' | 'uint16' | 'float16';

/**
 * How a model's float weights were stored on disk, by manifest weight name: 'float32' or the
 * dtype they were quantized to. For uint8 and uint16 the storage is affine (`q × scale + min`);
 * the scale and min belong to the values and are recomputed on save.
 */
export type QuantizationMap = ReadonlyMap<string, StoredDtype>;
export type StoredDtype = QuantizedDtype | 'float32';

export interface WeightQuantizationJson {
  dtype: QuantizedDtype;
  scale?: number;
  min?: number;
}

export interface WeightEntryJson {
  name: string;
  shape: number[];
  dtype: WeightDtype;
  group?: 'model' | 'optimizer';
  quantization?: WeightQuantizationJson;
}

export interface WeightGroupJson {
  paths: string[];
  weights: WeightEntryJson[];
}

/** `model.json` of a TF.js layers model. */
export interface LayersModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: Record<string, unknown>;
  weightsManifest: WeightGroupJson[];
  trainingConfig?: Record<string, unknown>;
  userDefinedMetadata?: Record<string, unknown>;
}

export function shardName(index: number, count: number): string {
  return `group1-shard${index + 1}of${count}.bin`;
}

/** Bytes a weight occupies in its shard: element count × stored bytes per value. */
export function storedWeightBytes(entry: WeightEntryJson): number {
  const elements = entry.shape.reduce((n, d) => n * d, 1);
  const perValue = entry.quantization ? QUANTIZED_DTYPE_BYTES[entry.quantization.dtype] : WEIGHT_DTYPE_BYTES[entry.dtype];
  return elements * perValue;
}
