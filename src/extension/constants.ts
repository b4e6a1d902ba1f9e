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
} as const;

export const Views = {
  container: 'prunelens',
  session: 'prunelens.session',
} as const;

export const StorageKeys = {
  runs: 'prunelens.runs',
} as const;

export const LOG_CHANNEL_NAME = 'PruneLens';
export const DIAGNOSTIC_SOURCE = 'PruneLens';
export const CONFIG_GLOB = '**/*.prune.json';

/**
 * Methods with the label and one-line description shown in pickers and code lenses. `needsData`
 * mirrors each engine method's own flag (the extension does not load the engine; a test keeps them equal).
 */
export const METHOD_INFO: readonly { id: string; label: string; description: string; needsData: boolean }[] = [
  { id: 'l1', label: 'L1', description: 'Magnitude baseline: remove the channel groups with the smallest L1 norm', needsData: false },
  { id: 'goprune', label: 'GoPrune', description: 'l2,p group sparsity by proximal alternating minimisation', needsData: true },
  { id: 'ssr', label: 'SSR', description: 'Structured sparsity regularisation solved by AULM', needsData: true },
  { id: 'dsp', label: 'DSP', description: 'Dynamic structure pruning with learned intra-channel groups', needsData: true },
  { id: 'ispasp', label: 'i-SpaSP', description: 'Iterative sparse structured pruning (CoSaMP-like support selection)', needsData: true },
  { id: 'ocspruner', label: 'OCSPruner', description: 'One-cycle pruning once a stability indicator settles', needsData: true },
];

export function methodLabel(id: string): string {
  return METHOD_INFO.find((m) => m.id === id)?.label ?? id;
}
