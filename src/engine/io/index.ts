export { loadModel, modelFileSize, type LoadedModel } from './load.js';
export { saveModelAtomic, type SavedModel } from './save.js';
export { writeFileAtomic, removeStaleTemporaries } from './atomic.js';
export { assertOutputSafe, canonicalPath, isInside } from './paths.js';
export { MODEL_JSON, SHARD_BYTES, type LayersModelJson, type WeightEntryJson, type WeightGroupJson } from './format.js';
