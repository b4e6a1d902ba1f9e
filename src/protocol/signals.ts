import type { MethodName } from './methods.js';

/**
 * What each method's `signal` events mean: a label, a unit and one line, keyed by method and
 * signal name. Every signal a method emits has an entry (a test holds the engine to it), so the
 * panel, the CLI and the notifications never show a bare camelCase name.
 */
export interface SignalInfo {
  label: string;
  /** What `value` counts: "channels", "ratio", "fraction", "norm", "threshold", ... */
  unit: string;
  explanation: string;
}

const zeroChannels = (variable: string): SignalInfo => ({
  label: 'Channels at zero',
  unit: 'channels',
  explanation: `Channels whose auxiliary vector (${variable}) is exactly zero; the target decides how many go, so this can exceed or fall short of the channels removed.`,
});

const removedChannels = (variable: string): SignalInfo => ({
  label: 'Channels removed',
  unit: 'channels',
  explanation: `Channels removed to land on the target: the zero ones of ${variable} first, then the smallest non-zero; zero channels beyond the target are kept.`,
});

export const METHOD_SIGNALS: Readonly<Record<MethodName, Readonly<Record<string, SignalInfo>>>> = {
  l1: {},
  goprune: {
    zeroGroups: zeroChannels('U'),
    gap: { label: 'Gap ‖W − U‖ / ‖W‖', unit: 'ratio', explanation: 'How far the weights still are from their sparse copy U; near 0 when the alternating minimisation has converged.' },
    removedGroups: removedChannels('U'),
  },
  ssr: {
    zeroGroups: zeroChannels('F'),
    residual: { label: 'Residual ‖W − F‖', unit: 'norm', explanation: 'Distance between the weights and their sparse copy F after an F/Y update; it falls as the weights follow F.' },
    removedGroups: removedChannels('F'),
  },
  dsp: {
    groupAssignment: { label: 'Group regulariser', unit: 'penalty', explanation: 'Σ over regrouped convs of the group-lasso penalty under the current hard group assignment; it falls as (group, input) kernel slices shrink.' },
    keptChannels: { label: 'Drop threshold β', unit: 'cumulative share', explanation: 'The threshold that meets the FLOPs target: each group drops the input channels holding the lowest β of its kernel energy.' },
  },
  ispasp: {
    residual: { label: 'Block residual (per iteration)', unit: 'fraction', explanation: 'Output energy of the block lost with the current support, relative to the dense block; lower is better.' },
    blockResidual: { label: 'Block residual (final)', unit: 'fraction', explanation: 'Output energy each pruned block loses with its final support, relative to the dense block.' },
  },
  ocspruner: {
    stability: { label: 'Sub-network stability', unit: 'fraction', explanation: 'How much the chosen sub-network overlaps the one chosen epochs before (1: unchanged); it prunes once this passes the threshold.' },
    pruned: { label: 'FLOPs reduction at pruning', unit: 'fraction', explanation: 'FLOPs the sub-network removed when OCSPruner pruned inside training.' },
  },
};

/** The entry for a method's signal, or undefined for one the table does not know. */
export function signalInfo(method: string, name: string): SignalInfo | undefined {
  return (METHOD_SIGNALS as Record<string, Record<string, SignalInfo> | undefined>)[method]?.[name];
}
