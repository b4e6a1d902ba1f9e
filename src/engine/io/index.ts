export { loadModel, modelFileSize, type LoadedModel } from './load.js';
export type { KerasFileKind, KerasSerialization, KerasWeightLocation } from './keras/record.js';
export { encodeModel, saveModelAtomic, writeFolderAtomic, type EncodedModel, type SaveOptions, type SavedModel } from './save.js';
export { writeFileAtomic, removeStaleTemporaries } from './atomic.js';
export { assertOutputSafe, canonicalPath, isInside } from './paths.js';
export { MODEL_JSON, SHARD_BYTES, type LayersModelJson, type QuantizationMap, type QuantizedDtype, type StoredDtype, type WeightEntryJson, type WeightGroupJson } from './format.js';
