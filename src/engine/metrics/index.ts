export { countCost, CostTracker, weightFlopFactors, type ModelCost, type LayerCost } from './cost.js';
export { unitNorms, unitSums, allZeroUnits, type UnitSums } from './norms.js';
export { layerStats } from './stats.js';
export { measureLatency, measureLatencyInTurns } from './latency.js';
export { timingSummary, latencyWithinNoise } from './timing.js';
