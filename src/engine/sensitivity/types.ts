// The report's shape is part of the protocol: the engine process streams it to the editor's panel.
export type { SensitivityEntry, SensitivityEntryInfo, SensitivityLatency, SensitivityPoint, SensitivityReport } from '../../protocol/events.js';
