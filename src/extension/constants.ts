/** Identifiers shared by package.json contributions, commands and tests. */
export const EXTENSION_ID = 'prunelens.prunelens';

export const Commands = {
  pruneModel: 'prunelens.pruneModel',
  analyzeModel: 'prunelens.analyzeModel',
  runConfig: 'prunelens.runConfig',
  dryRunConfig: 'prunelens.dryRunConfig',
  runVariant: 'prunelens.runVariant',
  openLastReport: 'prunelens.openLastReport',
  openReport: 'prunelens.openReport',
  stopSession: 'prunelens.stopSession',
  rerun: 'prunelens.rerun',
  showPanel: 'prunelens.showPanel',
  analyzeSensitivity: 'prunelens.analyzeSensitivity',
  openInEditor: 'prunelens.openInEditor',
  revealOutput: 'prunelens.revealOutput',
  openPrunedModel: 'prunelens.openPrunedModel',
  compareWithOriginal: 'prunelens.compareWithOriginal',
  openConfig: 'prunelens.openConfig',
  openExample: 'prunelens.openExample',
  openReportAsJson: 'prunelens.openReportAsJson',
} as const;

export const Views = {
  container: 'prunelens',
  session: 'prunelens.session',
  /** An empty tree whose welcome content holds the first-run buttons. */
  start: 'prunelens.start',
} as const;

export const StorageKeys = {
  runs: 'prunelens.runs',
} as const;

export const LOG_CHANNEL_NAME = 'PruneLens';
export const DIAGNOSTIC_SOURCE = 'PruneLens';
export const CONFIG_GLOB = '**/*.prune.json';
