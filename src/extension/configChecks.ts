/**
 * Checks of a `*.prune.json` that its JSON schema cannot express: files that must exist, an
 * output that would overwrite the model, a target the model cannot reach, data whose shape
 * does not fit the model input. vscode-free: the editor maps the JSON paths to ranges.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { parse, type ParseError } from 'jsonc-parser/lib/esm/main.js';
import { readModelInputShape, readNpyShape, sampleShapeMatches } from './modelFiles.js';
import { formatShape } from '../protocol/format.js';
import { assertOutputSafe } from '../engine/io/paths.js';
import { UserError } from '../engine/errors.js';

export interface ConfigCheck {
  message: string;
  path: (string | number)[];
  severity: 'error' | 'warning';
}

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

export async function checkConfigText(text: string, configPath: string, capacityOf?: CapacityLookup): Promise<ConfigCheck[]> {
  const errors: ParseError[] = [];
  const raw = parse(text, errors, { allowTrailingComma: false, disallowComments: false }) as Record<string, unknown> | undefined;
  if (errors.length || typeof raw !== 'object' || raw === null || Array.isArray(raw)) return [];
  const checks: ConfigCheck[] = [];
  const base = path.dirname(configPath);
  const at = (p: string) => path.resolve(base, p);

  let modelPath: string | undefined;
  if (typeof raw.model === 'string' && raw.model) {
    const resolved = at(raw.model);
    const info = await statOrUndefined(resolved);
    if (!info) checks.push({ path: ['model'], severity: 'error', message: `Model file not found: ${raw.model} (looked for ${resolved}). Point "model" at a TF.js model.json, relative to this config.` });
    else if (info.isDirectory()) checks.push({ path: ['model'], severity: 'error', message: `"${raw.model}" is a folder. Point "model" at the model.json inside it.` });
    else modelPath = resolved;
  }

  if (typeof raw.output === 'string' && raw.output && typeof raw.model === 'string' && raw.model) {
    // The engine's own check: the model's folder, a folder containing it, through symbolic links too.
    try {
      assertOutputSafe(at(raw.model), at(raw.output));
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      checks.push({ path: ['output'], severity: 'error', message: err.message });
    }
  }

  const target = raw.target as Record<string, unknown> | undefined;
  let targetChecked = false;
  if (target && typeof target === 'object') {
    for (const kind of FRACTION_TARGETS) {
      const amount = target[kind];
      if (typeof amount !== 'number') continue;
      if (amount >= 1) {
        checks.push({ path: ['target', kind], severity: 'error', message: `Target impossible: ${kind} ${amount} would remove ${Math.round(amount * 100)}% of the model; use a fraction below 1, e.g. 0.5.` });
        targetChecked = true;
      } else if (amount <= 0) {
        checks.push({ path: ['target', kind], severity: 'error', message: `Target ${kind} ${amount} removes nothing; use a fraction between 0 and 1, e.g. 0.5.` });
        targetChecked = true;
      }
    }
  }

  let inputShape: (number | null)[] | undefined;
  if (modelPath) {
    try {
      inputShape = await readModelInputShape(modelPath);
    } catch (err) {
      checks.push({ path: ['model'], severity: 'error', message: `The model file is not a readable TF.js model.json: ${(err as Error).message}` });
      modelPath = undefined;
    }
  }

  if (modelPath && target && !targetChecked && capacityOf) {
    const capacity = await capacityOf(modelPath).catch(() => undefined);
    if (capacity) checks.push(...checkTargetAgainstCapacity(target, capacity));
  }

  const data = raw.data as Record<string, unknown> | undefined;
  if (data && typeof data === 'object') checks.push(...(await checkData(data, at, inputShape)));
  return checks;
}

export function checkTargetAgainstCapacity(target: Record<string, unknown>, capacity: ModelCapacity): ConfigCheck[] {
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

async function checkData(data: Record<string, unknown>, at: (p: string) => string, inputShape: (number | null)[] | undefined): Promise<ConfigCheck[]> {
  const checks: ConfigCheck[] = [];
  if (data.format === 'builtin' && (data.name === 'mnist' || data.name === 'fashion-mnist')) {
    if (inputShape && !sampleShapeMatches([28, 28, 1], inputShape)) {
      checks.push({ path: ['data', 'name'], severity: 'error', message: `${data.name} images are 28×28×1 but the model input is ${formatShape(inputShape)}.` });
    }
  }
  if (data.format === 'npy') {
    for (const field of ['x', 'xVal'] as const) {
      const file = data[field];
      if (typeof file !== 'string') continue;
      const shape = await readNpyShape(at(file)).catch((err: NodeJS.ErrnoException) => {
        checks.push({ path: ['data', field], severity: 'error', message: err.code === 'ENOENT' ? `Data file not found: ${file}.` : `Cannot read ${file}: ${err.message}.` });
        return undefined;
      });
      if (shape && inputShape && !sampleShapeMatches(shape.slice(1), inputShape)) {
        checks.push({ path: ['data', field], severity: 'error', message: `${file} holds samples shaped ${formatShape(shape.slice(1))} (array ${formatShape(shape)}) but the model input is ${formatShape(inputShape)}.` });
      }
    }
    for (const field of ['y', 'yVal'] as const) {
      const file = data[field];
      if (typeof file === 'string' && !(await statOrUndefined(at(file)))) checks.push({ path: ['data', field], severity: 'error', message: `Data file not found: ${file}.` });
    }
  }
  if (data.format === 'imagefolder') {
    for (const field of ['path', 'validationPath'] as const) {
      const folder = data[field];
      if (typeof folder !== 'string') continue;
      const info = await statOrUndefined(at(folder));
      if (!info?.isDirectory()) checks.push({ path: ['data', field], severity: 'error', message: `Image folder not found: ${folder}.` });
    }
  }
  return checks;
}

async function statOrUndefined(p: string) {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}
