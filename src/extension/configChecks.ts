/**
 * The editor's checks of a `*.prune.json` beyond its JSON schema: the engine's file checks (the
 * model file, an output that would overwrite it, data files and their shapes) plus a target the
 * model cannot reach. vscode-free: the editor maps the JSON paths to ranges.
 */
import * as path from 'node:path';
import { parse, type ParseError } from 'jsonc-parser/lib/esm/main.js';
import { checkConfigFiles, type ConfigProblem } from '../engine/config/index.js';

/** What an analysis of the model says about how far it can be pruned. */
export interface ModelCapacity {
  prunableChannels: number;
  /** Channel groups (coupled channels count once); each must keep at least one channel. */
  groups: number;
  /** Largest reachable reductions, when the engine reports them. */
  maxFlopsReduction?: number;
  maxParamsReduction?: number;
}

export type CapacityLookup = (modelPath: string) => Promise<ModelCapacity | undefined>;

const FRACTION_TARGETS = ['flopsReduction', 'paramsReduction', 'channelRatio'] as const;

export async function checkConfigText(text: string, configPath: string, capacityOf?: CapacityLookup): Promise<ConfigProblem[]> {
  const errors: ParseError[] = [];
  const raw = parse(text, errors, { allowTrailingComma: false, disallowComments: false }) as Record<string, unknown> | undefined;
  if (errors.length || typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [];
  const fileProblems = await checkConfigFiles(raw, configPath);
  const checks = fileProblems.map(asSentence);

  const target = raw.target as Record<string, unknown> | undefined;
  // A fraction outside (0, 1) is the schema's finding (VS Code's JSON support shows it on the same
  // range): one diagnostic per mistake, so it is neither repeated here nor checked against the model.
  const outOfRange = !!target && typeof target === 'object' && FRACTION_TARGETS.some((kind) => typeof target[kind] === 'number' && !((target[kind] as number) > 0 && (target[kind] as number) < 1));

  const modelUsable = typeof raw.model === 'string' && raw.model && !fileProblems.some((p) => p.path[0] === 'model');
  if (modelUsable && target && !outOfRange && capacityOf) {
    const capacity = await capacityOf(path.resolve(path.dirname(configPath), raw.model as string)).catch(() => undefined);
    if (capacity) checks.push(...checkTargetAgainstCapacity(target, capacity));
  }
  return checks;
}

/** An engine problem as the editor shows it: a sentence, the fix after it. */
function asSentence(problem: ConfigProblem): ConfigProblem {
  const message = problem.message.charAt(0).toUpperCase() + problem.message.slice(1);
  return { path: problem.path, severity: problem.severity, message: `${message}.${problem.fix ? ` ${problem.fix}.` : ''}` };
}

export function checkTargetAgainstCapacity(target: Record<string, unknown>, capacity: ModelCapacity): ConfigProblem[] {
  const kind = Object.keys(target).find((k) => typeof target[k] === 'number');
  if (!kind) return [];
  const amount = target[kind] as number;
  if (capacity.prunableChannels === 0) {
    return [{ path: ['target', kind], severity: 'error', message: 'Target impossible: this model has no prunable channels (every layer is blocked). Run "Analyze Model" to see why.' }];
  }
  const limits: Record<string, number | undefined> = {
    channelRatio: (capacity.prunableChannels - capacity.groups) / capacity.prunableChannels,
    flopsReduction: capacity.maxFlopsReduction,
    paramsReduction: capacity.maxParamsReduction,
  };
  const limit = limits[kind];
  if (limit !== undefined && amount > limit) {
    return [{ path: ['target', kind], severity: 'error', message: `Target impossible for this model: ${kind} ${amount} exceeds the largest reachable ${limit.toFixed(3)} (every channel group keeps at least one channel).` }];
  }
  return [];
}
