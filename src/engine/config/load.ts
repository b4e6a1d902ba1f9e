import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser';
import schema from '../../../schemas/prune-config.schema.json';
import { UserError } from '../errors.js';
import { modelPathProblem, outputPathProblem, type ConfigProblem } from './files.js';
import { resolveGlob } from '../data/glob.js';
import { METHOD_NAMES, TARGET_KINDS, type DataConfig, type MethodName, type MethodSections, type PruneConfig, type Target, type TrainConfig, type BackendName, type ExportFormat, type ObjectiveKind, type DistillConfig, type LossConfig, type Allocation } from './types.js';

/** What a config file may override when a session is started (method variants, dry runs). */
export interface ConfigOverrides {
  method?: string;
  output?: string;
  backend?: string;
  dryRun?: boolean;
  /** Extra formats (`--export tfjs`), validated by the schema like the config's own field. */
  export?: string[];
}

export const DEFAULT_TRAIN: TrainConfig = {
  epochs: 1,
  batchSize: 64,
  learningRate: 0.01,
  momentum: 0.9,
  weightDecay: 0.0005,
  optimizer: 'sgd',
  schedule: 'auto',
  stepEpochs: 1,
  gamma: 0.1,
};

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateSchema = ajv.compile(schema);

/** Validates config text against the schema. Used by the engine and by the editor's diagnostics. */
export function validateConfigText(text: string): { value?: unknown; problems: ConfigProblem[] } {
  const parsed = parseConfigText(text);
  return parsed.value === undefined ? parsed : { value: parsed.value, problems: validateConfigValue(parsed.value) };
}

/** JSON (comments allowed) that must be an object; the problem says where the syntax breaks. */
function parseConfigText(text: string): { value?: Record<string, unknown>; problems: ConfigProblem[] } {
  const parseErrors: ParseError[] = [];
  const value = parseJsonc(text, parseErrors, { allowTrailingComma: false, disallowComments: false });
  if (parseErrors.length > 0) {
    const first = parseErrors[0];
    const { line, column } = lineAndColumn(text, first.offset);
    return { problems: [{ message: `invalid JSON at line ${line}, column ${column}: ${printParseErrorCode(first.error)}`, path: [], severity: 'error' }] };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [{ message: 'a pruning config must be a JSON object with "model", "method", "target" and "output"', path: [], severity: 'error' }] };
  }
  return { value: value as Record<string, unknown>, problems: [] };
}

function validateConfigValue(value: Record<string, unknown>): ConfigProblem[] {
  return validateSchema(value) ? [] : describeSchemaErrors(validateSchema.errors ?? [], value);
}

type SectionSchema = { properties?: Record<string, { default?: unknown }> };
const methodSectionSchema = (method: MethodName) => (schema.properties as unknown as Record<MethodName, SectionSchema>)[method];
const sectionValidators = new Map<MethodName, ValidateFunction>();

/** Problems of one method's section (`{"<method>": {...}}`), worded and located as loading a config file reports them. */
export function methodSectionProblems(method: MethodName, section: unknown): ConfigProblem[] {
  let validate = sectionValidators.get(method);
  if (!validate) {
    validate = ajv.compile({ type: 'object', properties: { [method]: methodSectionSchema(method) } });
    sectionValidators.set(method, validate);
  }
  const value = { [method]: section };
  return validate(value) ? [] : describeSchemaErrors(validate.errors ?? [], value);
}

/** The schema's default of every option of a method's section that has one (a fresh copy each call). */
export function methodSectionDefaults(method: MethodName): Record<string, unknown> {
  const options = Object.entries(methodSectionSchema(method).properties ?? {}).filter(([, option]) => 'default' in option);
  return structuredClone(Object.fromEntries(options.map(([name, option]) => [name, option.default])));
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function pathOf(error: ErrorObject): (string | number)[] {
  return error.instancePath
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
}

type SchemaNode = Record<string, unknown>;

function isObject(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * ajv reports the errors of every branch of a failed oneOf; only the branch the value meant is
 * worth showing. That is the branch whose discriminator (a property every branch fixes with
 * `const`, like data.format) matches, or, without one, the branch with the fewest errors. A
 * discriminator that matches no branch, or is missing, becomes one error listing its allowed values.
 */
function narrowOneOfErrors(errors: ErrorObject[]): ErrorObject[] {
  let result = errors;
  for (const oneOf of errors.filter((e) => e.keyword === 'oneOf')) {
    const prefix = `${oneOf.schemaPath}/`;
    const branchOf = (e: ErrorObject) => Number(e.schemaPath.slice(prefix.length).split('/')[0]);
    const inside = new Set(result.filter((e) => e !== oneOf && e.schemaPath.startsWith(prefix)));
    const several = (oneOf.params as { passingSchemas?: unknown }).passingSchemas != null;
    const chosen = several || inside.size === 0 ? [oneOf] : chooseBranch(oneOf, [...inside], branchOf);
    const next: ErrorObject[] = [];
    let placed = false;
    for (const e of result) {
      if (e !== oneOf && !inside.has(e)) next.push(e);
      else if (!placed) { next.push(...chosen); placed = true; }
    }
    result = next;
  }
  return result;
}

function chooseBranch(oneOf: ErrorObject, inside: ErrorObject[], branchOf: (e: ErrorObject) => number): ErrorObject[] {
  const branches = Array.isArray(oneOf.schema) ? (oneOf.schema as unknown[]) : [];
  const key = discriminator(branches);
  const value = oneOf.data;
  if (key !== undefined && isObject(value)) {
    const allowedValues = branches.map((b) => ((b as SchemaNode).properties as SchemaNode)[key] as SchemaNode).map((p) => p.const);
    // Kept inside this oneOf's schema path, so an enclosing oneOf still sees it as part of this branch.
    const schemaPath = `${oneOf.schemaPath}/${key}`;
    if (!(key in value)) {
      return [{ ...oneOf, keyword: 'required', schemaPath, params: { missingProperty: key, allowedValues } }];
    }
    const matched = allowedValues.findIndex((v) => v === value[key]);
    if (matched < 0) {
      return [{ ...oneOf, keyword: 'enum', schemaPath, instancePath: `${oneOf.instancePath}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`, params: { allowedValues } }];
    }
    return inside.filter((e) => branchOf(e) === matched);
  }
  const counts = new Map<number, number>();
  for (const e of inside) counts.set(branchOf(e), (counts.get(branchOf(e)) ?? 0) + 1);
  const [fewest] = [...counts.entries()].sort((a, b) => a[1] - b[1] || a[0] - b[0])[0];
  return inside.filter((e) => branchOf(e) === fewest);
}

/** A property that every branch fixes to a constant, which tells the branches apart. */
function discriminator(branches: unknown[]): string | undefined {
  if (branches.length === 0 || !branches.every((b) => isObject(b) && isObject(b.properties))) return undefined;
  const first = (branches[0] as SchemaNode).properties as SchemaNode;
  return Object.keys(first).find((key) => branches.every((b) => {
    const property = ((b as SchemaNode).properties as SchemaNode)[key];
    return isObject(property) && 'const' in property;
  }));
}

const COMPARISONS: Record<string, string> = { '>=': '≥', '<=': '≤', '>': '>', '<': '<' };

/** A value as the message quotes it, cut short when long. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function allowedList(values: unknown[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

/** " (did you mean "x"?)" when a string is a near miss of one of the allowed values. */
function closestValue(value: unknown, allowed: unknown[]): string {
  if (typeof value !== 'string') return '';
  const best = closest(value, allowed.filter((v): v is string => typeof v === 'string'));
  return best ? ` (did you mean "${best}"?)` : '';
}

/** Turns ajv's errors into one actionable message per offending field. */
function describeSchemaErrors(allErrors: ErrorObject[], value: unknown): ConfigProblem[] {
  const errors = narrowOneOfErrors(allErrors);
  const problems = new Map<string, ConfigProblem>();
  const add = (path: (string | number)[], message: string) => {
    const key = path.join('.');
    if (!problems.has(key)) problems.set(key, { message, path, severity: 'error' });
  };
  const root = value as Record<string, unknown>;
  for (const error of errors) {
    const path = pathOf(error);
    const field = path.join('.');
    if (path[0] === 'target' && path.length <= 2) {
      const target = root.target;
      const kinds = target && typeof target === 'object' ? Object.keys(target) : [];
      const known = kinds.filter((k) => (TARGET_KINDS as readonly string[]).includes(k));
      if (known.length === 1 && kinds.length === 1) {
        const kind = known[0];
        const amount = (target as Record<string, unknown>)[kind];
        const range = kind === 'normThreshold' ? 'a number ≥ 0' : 'a fraction between 0 and 1 (exclusive), e.g. 0.5';
        add(['target', kind], `target.${kind} is ${JSON.stringify(amount)}; it must be ${range}`);
      } else {
        add(['target'], `target must have exactly one of ${TARGET_KINDS.join(', ')}, e.g. {"flopsReduction": 0.5}`);
      }
      continue;
    }
    const current = valueAt(root, path);
    switch (error.keyword) {
      case 'required': {
        const { missingProperty, allowedValues } = error.params as { missingProperty: string; allowedValues?: unknown[] };
        add(path, `${field ? field + ': ' : ''}missing required field "${missingProperty}"${allowedValues ? ` (one of ${allowedList(allowedValues)})` : ''}`);
        break;
      }
      case 'additionalProperties': {
        const extra = (error.params as { additionalProperty: string }).additionalProperty;
        add([...path, extra], `unknown field "${field ? field + '.' : ''}${extra}"; remove it or check its spelling${suggestion(extra, error)}`);
        break;
      }
      case 'enum': {
        const allowed = (error.params as { allowedValues: unknown[] }).allowedValues;
        add(path, `${field} is ${shown(current)}; it must be ${allowed.length === 1 ? '' : 'one of '}${allowedList(allowed)}${closestValue(current, allowed)}`);
        break;
      }
      case 'const':
        add(path, `${field} is ${shown(current)}; it must be ${JSON.stringify((error.params as { allowedValue: unknown }).allowedValue)}`);
        break;
      case 'type':
        add(path, `${field} is ${shown(current)}; it must be ${article((error.params as { type: string }).type)}`);
        break;
      case 'minimum':
      case 'maximum':
      case 'exclusiveMinimum':
      case 'exclusiveMaximum': {
        const { comparison, limit } = error.params as { comparison: string; limit: number };
        add(path, `${field} is ${shown(current)}; it must be ${COMPARISONS[comparison] ?? comparison} ${limit}`);
        break;
      }
      case 'minLength':
        add(path, (error.params as { limit: number }).limit === 1 ? `${field} must not be empty` : `${field} ${error.message ?? 'is too short'}`);
        break;
      case 'oneOf':
        add(path, `${field || 'config'} matches more than one of its forms; remove the fields of all but one`);
        break;
      case 'if':
        break;
      default:
        add(path, `${field || 'config'} ${error.message ?? 'is invalid'}`);
    }
  }
  return [...problems.values()];
}

function valueAt(root: unknown, path: (string | number)[]): unknown {
  let value = root;
  for (const key of path) value = (value as Record<string | number, unknown> | undefined)?.[key];
  return value;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** A near-miss field name, or the fields allowed there when they are few. */
function suggestion(name: string, error: ErrorObject): string {
  const parentSchema = error.parentSchema as { properties?: Record<string, unknown> } | undefined;
  const fields = Object.keys(parentSchema?.properties ?? {});
  const best = closest(name, fields);
  if (best) return ` (did you mean "${best}"?)`;
  return fields.length > 0 && fields.length <= 8 ? ` (fields here: ${fields.join(', ')})` : '';
}

/** The candidate a few edits away from `name`, if any. */
function closest(name: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) { bestDistance = d; best = c; }
  }
  return best && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

/** Reads, validates and resolves a `*.prune.json` file. Every failure is a UserError naming the file and field. */
export function loadConfig(configPath: string, overrides: ConfigOverrides = {}): PruneConfig {
  const file = resolve(configPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'config file not found' : `cannot read the config (${code ?? String(err)})`, { file });
  }
  const parsed = parseConfigText(text);
  if (parsed.value === undefined) throw new UserError(parsed.problems[0].message, { file });
  const raw = parsed.value;
  if (overrides.method !== undefined) raw.method = overrides.method;
  if (overrides.backend !== undefined) raw.backend = overrides.backend;
  if (overrides.output !== undefined) raw.output = overrides.output;
  if (overrides.export !== undefined) raw.export = overrides.export;
  const problems = validateConfigValue(raw);
  if (problems.length > 0) {
    const first = problems[0];
    throw new UserError(first.message, { file, field: first.path.length ? first.path.join('.') : undefined });
  }
  return resolveConfig(raw, file);
}

function resolveConfig(raw: Record<string, unknown>, file: string): PruneConfig {
  const base = dirname(file);
  const at = (p: string) => resolve(base, p);
  const problem = modelPathProblem(raw.model as string, file) ?? outputPathProblem(raw.model as string, raw.output as string, file);
  if (problem) throw new UserError(problem.message, { file, field: problem.path.join('.'), fix: problem.fix });
  const model = at(raw.model as string);
  const output = at(raw.output as string);
  const data = raw.data as DataConfig | undefined;
  const seed = (raw.seed as number | undefined) ?? 1;
  const hasData = data !== undefined;
  const trainRaw = raw.train as Partial<TrainConfig> | undefined;
  const finetuneRaw = raw.finetune as Partial<TrainConfig> | undefined;
  const latency = raw.latency as { runs?: number; batchSize?: number } | undefined;
  return {
    configPath: file,
    model,
    method: raw.method as MethodName,
    target: raw.target as Target,
    output,
    ...allocationFields(raw, file),
    exclude: (raw.exclude as string[] | undefined) ?? [],
    maxGroupReduction: (raw.maxGroupReduction as number | undefined) ?? 0.9,
    roundTo: (raw.roundTo as number | 'auto' | undefined) ?? 1,
    recalibrateBatchNorm: (raw.recalibrateBatchNorm as boolean | undefined) ?? true,
    data: data ? resolveDataPaths(data, at, base) : undefined,
    ...objectiveFields(raw, hasData, file),
    train: hasData ? { ...DEFAULT_TRAIN, ...trainRaw } : undefined,
    finetune: hasData ? { ...DEFAULT_TRAIN, ...finetuneRaw } : undefined,
    backend: (raw.backend as BackendName | undefined) ?? 'auto',
    seed,
    ...(Object.fromEntries(METHOD_NAMES.map((name) => [name, raw[name]])) as MethodSections),
    latency: { runs: latency?.runs ?? 20, batchSize: latency?.batchSize ?? 1 },
    export: (raw.export as ExportFormat[] | undefined) ?? [],
  };
}

/** The config's `objective`, `distill` and `loss`; distillation without data is refused here, in one line. */
function objectiveFields(raw: Record<string, unknown>, hasData: boolean, file: string): Pick<PruneConfig, 'objective' | 'distill' | 'loss'> {
  const objective = raw.objective as ObjectiveKind | undefined;
  const distill = raw.distill as DistillConfig | undefined;
  if (!hasData && (objective === 'distill' || distill !== undefined)) {
    throw new UserError(`"${objective === 'distill' ? 'objective' : 'distill'}" asks for distillation, which trains on data, but the config has no "data"`, {
      file, field: objective === 'distill' ? 'objective' : 'distill', fix: 'Add "data" (unlabelled samples will do), or remove the field' });
  }
  return { objective, distill, loss: raw.loss as LossConfig | undefined };
}

function resolveDataPaths(data: DataConfig, at: (p: string) => string, base: string): DataConfig {
  switch (data.format) {
    case 'npy': {
      const files = (y: string | string[] | undefined) => (y === undefined ? undefined : Array.isArray(y) ? y.map(at) : at(y));
      return { ...data, x: at(data.x), y: files(data.y), xVal: data.xVal ? at(data.xVal) : undefined, yVal: files(data.yVal) };
    }
    case 'images':
      return { ...data, glob: resolveGlob(data.glob, base) };
    case 'imagefolder':
      return { ...data, path: at(data.path), validationPath: data.validationPath ? at(data.validationPath) : undefined };
    default:
      return data;
  }
}

/**
 * `allocation` and the older `scope` it replaces: "global" = scope global, "uniform" = scope layer;
 * "sensitivity" selects globally within the per-group counts it allocates. Both given must agree.
 */
function allocationFields(raw: Record<string, unknown>, file: string): { scope: 'global' | 'layer'; allocation: Allocation } {
  const scope = raw.scope as 'global' | 'layer' | undefined;
  const fromScope: Allocation | undefined = scope === undefined ? undefined : scope === 'layer' ? 'uniform' : 'global';
  const given = raw.allocation as Allocation | undefined;
  if (given !== undefined && fromScope !== undefined && given !== fromScope) {
    throw new UserError(`"scope": "${scope}" contradicts "allocation": "${given}"`, { file, field: 'scope', fix: `Remove "scope": "allocation" replaces it ("global" = scope global, "uniform" = scope layer)` });
  }
  const allocation = given ?? fromScope ?? 'global';
  return { scope: allocation === 'uniform' ? 'layer' : 'global', allocation };
}
