export * from './types.js';
export { loadConfig, validateConfigText, DEFAULT_TRAIN, type ConfigOverrides } from './load.js';
export { checkConfigFiles, readModelInputShape, readModelOutputUnits, type ConfigProblem } from './files.js';
export { isKerasModelFile } from '../io/keras/model-config.js';
export { isOnnxModelFile } from '../io/onnx/model-info.js';
