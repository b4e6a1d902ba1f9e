/**
 * The pruning methods, shared by the engine, the CLI, the extension and the webview. The
 * config's `method` union is derived from this list, the schema's `method` enum is checked
 * against it by a test, and the engine keys one descriptor per method off it. Imports nothing.
 */

/** Every method, in the order pickers, tables and charts list them. */
export const METHOD_NAMES = ['l1', 'goprune', 'ssr', 'dsp', 'ispasp', 'ocspruner'] as const;

export type MethodName = (typeof METHOD_NAMES)[number];

export interface MethodInfo {
  id: MethodName;
  /** Display name (pickers, code lenses, comparison tables). */
  label: string;
  /** One line for pickers. */
  description: string;
  /** Whether a session needs `data` (false: one-shot, no training besides fine-tuning). */
  needsData: boolean;
}

// `satisfies` fails to compile when a method of the union lacks an entry or an entry names no method.
const INFO = {
  l1: { label: 'L1', description: 'Magnitude baseline: remove the channel groups with the smallest L1 norm', needsData: false },
  goprune: { label: 'GoPrune', description: 'l2,p group sparsity by proximal alternating minimisation', needsData: true },
  ssr: { label: 'SSR', description: 'Structured sparsity regularisation solved by AULM', needsData: true },
  dsp: { label: 'DSP', description: 'Dynamic structure pruning with learned intra-channel groups', needsData: true },
  ispasp: { label: 'i-SpaSP', description: 'Iterative sparse structured pruning (CoSaMP-like support selection)', needsData: true },
  ocspruner: { label: 'OCSPruner', description: 'One-cycle pruning once a stability indicator settles', needsData: true },
} as const satisfies Record<MethodName, Omit<MethodInfo, 'id'>>;

/** Every method with its label, description and data need, in `METHOD_NAMES` order. */
export const METHOD_INFO: readonly MethodInfo[] = METHOD_NAMES.map((id) => ({ id, ...INFO[id] }));

export function isMethodName(value: string): value is MethodName {
  return (METHOD_NAMES as readonly string[]).includes(value);
}

export function methodInfo(id: MethodName): MethodInfo {
  return { id, ...INFO[id] };
}

/** The display label of a method id; an unknown id (an older run's) reads as itself. */
export function methodLabel(id: string): string {
  return isMethodName(id) ? INFO[id].label : id;
}
