export * from './types.js';
export { loadConfig, validateConfigText, DEFAULT_TRAIN, type ConfigOverrides, type ConfigProblem } from './load.js';
