/**
 * Checks of what a config's paths point at, which its JSON schema cannot express: the model file,
 * an output folder that would overwrite it, data files and whether their samples fit the model
 * input. `loadConfig` applies the model and output checks; the editor's diagnostics apply them all.
 * Loads no tfjs: a model's input shape comes from its model.json topology, its Keras file's model
 * config (io/keras/model-config.ts) or its ONNX graph's input (io/onnx/model-info.ts), an .npy
 * array's shape from its header.
 */
import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { formatShape } from '../../protocol/format.js';
import { UserError } from '../errors.js';
import { readNpyHeader } from '../data/npy.js';
import { sampleShapeFits } from '../data/shapes.js';
import { splitGlob } from '../data/glob.js';
import { outputFolderProblem } from '../io/paths.js';
import { isKerasModelFile, readKerasModelConfig } from '../io/keras/model-config.js';
import { isOnnxModelFile, readOnnxModelInfo } from '../io/onnx/model-info.js';

export interface ConfigProblem {
  /** What is wrong, in the engine's words (lower case, no full stop). */
  message: string;
  /** JSON path of the offending value, e.g. ['target', 'flopsReduction']. Empty for the whole file. */
  path: (string | number)[];
  severity: 'error' | 'warning';
  /** What to do about it, when there is one thing to do. */
  fix?: string;
}

/** The `model` field's file: it must exist and be a file. */
export function modelPathProblem(model: string, configFile: string): ConfigProblem | undefined {
  const resolved = resolve(dirname(configFile), model);
  const info = statSync(resolved, { throwIfNoEntry: false });
  if (!info) return { path: ['model'], severity: 'error', message: `model file not found: ${model} (looked for ${resolved})`, fix: 'Point "model" at a TF.js model.json, a Keras .keras or .h5 file or an ONNX .onnx file, relative to this config' };
  if (info.isDirectory()) return { path: ['model'], severity: 'error', message: `"${model}" is a folder`, fix: 'Point "model" at the model.json file inside it' };
  return undefined;
}

/** The `output` folder: saving there must not overwrite or delete the input model. */
export function outputPathProblem(model: string, output: string, configFile: string): ConfigProblem | undefined {
  const at = (p: string) => resolve(dirname(configFile), p);
  const problem = outputFolderProblem(at(model), at(output));
  return problem && { path: ['output'], severity: 'error', ...problem };
}

/** Every file check of a parsed config; fields that are missing or of the wrong type are the schema's to report. */
export async function checkConfigFiles(raw: Record<string, unknown>, configFile: string): Promise<ConfigProblem[]> {
  const problems: ConfigProblem[] = [];
  const at = (p: string) => resolve(dirname(configFile), p);
  const model = typeof raw.model === 'string' && raw.model ? raw.model : undefined;
  const modelProblem = model === undefined ? undefined : modelPathProblem(model, configFile);
  if (modelProblem) problems.push(modelProblem);
  if (model !== undefined && typeof raw.output === 'string' && raw.output) {
    const outputProblem = outputPathProblem(model, raw.output, configFile);
    if (outputProblem) problems.push(outputProblem);
  }
  let input: ModelInput | undefined;
  if (model !== undefined && !modelProblem) {
    try {
      input = await readModelInput(at(model));
    } catch (err) {
      const what = isKerasModelFile(model) ? 'Keras model' : isOnnxModelFile(model) ? 'ONNX model' : 'TF.js model.json';
      problems.push({ path: ['model'], severity: 'error', message: `the model file is not a readable ${what}: ${problemText(err)}`, ...(err instanceof UserError && err.fix ? { fix: err.fix } : {}) });
    }
  }
  const data = raw.data;
  if (data && typeof data === 'object' && !Array.isArray(data)) problems.push(...(await checkDataFiles(data as Record<string, unknown>, at, input, dirname(configFile))));
  if (input?.shape) problems.push(...augmentProblems(raw, input.shape));
  return problems;
}

/** Augmentation moves pixels, so it needs image samples: a model input of [height, width, channels]. */
function augmentProblems(raw: Record<string, unknown>, inputShape: (number | null)[]): ConfigProblem[] {
  if (inputShape.length === 3) return [];
  return (['train', 'finetune'] as const).flatMap((section) => {
    const augment = (raw[section] as { augment?: unknown } | undefined)?.augment;
    return (augment !== null && typeof augment === 'object') || augment === true
      ? [{ path: [section, 'augment'], severity: 'error' as const, message: `augmentation needs image samples [height, width, channels], but the model input is ${formatShape(inputShape)}`, fix: 'Remove "augment" for non-image inputs' }]
      : [];
  });
}

/** A reader's error without the file (the diagnostic sits on the config's model field) and without its fix (the problem's own field). */
function problemText(err: unknown): string {
  let text = (err as Error).message ?? String(err);
  if (err instanceof UserError) {
    if (err.file && text.startsWith(`${err.file}: `)) text = text.slice(err.file.length + 2);
    if (err.fix && text.endsWith(`. ${err.fix}`)) text = text.slice(0, -(err.fix.length + 2));
  }
  return text;
}

/**
 * What a model takes: its runtime input shape (NHWC for images), and the shape its .npy samples come in: the
 * same, except for an ONNX image model, whose data holds samples as the graph takes them, NCHW (the session
 * transposes them once at load).
 */
interface ModelInput {
  shape: (number | null)[] | undefined;
  nchw?: (number | null)[];
}

async function readModelInput(modelPath: string): Promise<ModelInput> {
  if (!isOnnxModelFile(modelPath)) return { shape: await readModelInputShape(modelPath) };
  const info = await readOnnxModelInfo(modelPath);
  return { shape: info.runtimeInputShape, ...(info.input.shape.length === 3 ? { nchw: info.input.shape } : {}) };
}

function samplesFit(sample: number[], input: ModelInput): boolean {
  const shape = input.nchw ?? input.shape;
  return shape === undefined || sampleShapeFits(sample, shape);
}

function describeInput(input: ModelInput): string {
  return input.nchw ? `${formatShape(input.nchw)} (NCHW, as the ONNX graph takes it)` : formatShape(input.shape!);
}

async function checkDataFiles(data: Record<string, unknown>, at: (p: string) => string, input: ModelInput | undefined, configDir: string): Promise<ConfigProblem[]> {
  const inputShape = input?.shape;
  const problems: ConfigProblem[] = [];
  const problem = (field: string | (string | number)[], message: string) => problems.push({ path: ['data', ...(Array.isArray(field) ? field : [field])], severity: 'error', message });
  if (data.format === 'builtin' && (data.name === 'mnist' || data.name === 'fashion-mnist')) {
    if (inputShape && !sampleShapeFits([28, 28, 1], inputShape)) problem('name', `the built-in ${data.name} images are 28×28×1 but the model input is ${formatShape(inputShape)}`);
  }
  if (data.format === 'npy') {
    for (const field of ['x', 'xVal'] as const) {
      const file = data[field];
      if (typeof file !== 'string') continue;
      const shape = await readNpyHeader(at(file)).then((h) => h.shape, (err: NodeJS.ErrnoException) => {
        problem(field, err.code === 'ENOENT' ? `data file not found: ${file}` : `cannot read ${file}: ${err.message}`);
        return undefined;
      });
      if (shape && input && inputShape && !samplesFit(shape.slice(1), input)) {
        problem(field, `the samples in ${file} are shaped ${formatShape(shape.slice(1))} (array ${formatShape(shape)}) but the model input is ${describeInput(input)}`);
      }
    }
    for (const field of ['y', 'yVal'] as const) {
      const files = data[field];
      const list = typeof files === 'string' ? [files] : Array.isArray(files) ? files : [];
      for (const [k, file] of list.entries()) {
        if (typeof file === 'string' && !(await exists(at(file)))) problem(Array.isArray(files) ? [field, k] : field, `data file not found: ${file}`);
      }
    }
  }
  if (data.format === 'images' && typeof data.glob === 'string' && data.glob) {
    try {
      const { base } = splitGlob(data.glob, configDir);
      if (!(await stat(base).then((s) => s.isDirectory() || s.isFile(), () => false))) problem('glob', `folder not found: ${base}`);
    } catch (err) {
      const text = problemText(err);
      const field = err instanceof UserError ? err.field : undefined;
      problems.push({ path: ['data', 'glob'], severity: 'error', message: field && text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text,
        ...(err instanceof UserError && err.fix ? { fix: err.fix } : {}) });
    }
  }
  if (data.format === 'imagefolder') {
    for (const field of ['path', 'validationPath'] as const) {
      const folder = data[field];
      if (typeof folder === 'string' && !(await stat(at(folder)).then((s) => s.isDirectory(), () => false))) problem(field, `image folder not found: ${folder}`);
    }
  }
  return problems;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** The model's topology: model.json's `modelTopology`, or a Keras file's model config (the same `{class_name, config}` form). */
async function readTopology(modelPath: string): Promise<unknown> {
  if (isKerasModelFile(modelPath)) return readKerasModelConfig(modelPath);
  const json = JSON.parse(await readFile(modelPath, 'utf8')) as Record<string, unknown>;
  return json.modelTopology;
}

/**
 * Input shape without the batch dimension, e.g. [28, 28, 1]; undefined when not found. Reads model.json, .keras, .h5
 * and .onnx (as the runtime model takes it: an NCHW [3, 32, 32] graph input is [32, 32, 3]).
 */
export async function readModelInputShape(modelPath: string): Promise<(number | null)[] | undefined> {
  if (isOnnxModelFile(modelPath)) return (await readOnnxModelInfo(modelPath)).runtimeInputShape;
  const topology = await readTopology(modelPath);
  for (const layer of layersOf(topology)) {
    const c = layer.config ?? {};
    // Keras 3 writes `batch_shape`, Keras 2 and TF.js `batch_input_shape`.
    const shape = (c.batch_input_shape ?? c.batchInputShape ?? c.batch_shape) as (number | null)[] | undefined;
    if (Array.isArray(shape)) return shape.slice(1);
    const input = (c.input_shape ?? c.inputShape) as (number | null)[] | undefined;
    if (Array.isArray(input)) return input;
    if (layer.class_name === 'InputLayer') break;
  }
  // A Keras Sequential built with build(input_shape) records the shape only on the model.
  const built = ((topology as { config?: { build_input_shape?: unknown } } | undefined)?.config)?.build_input_shape;
  return Array.isArray(built) ? (built as (number | null)[]).slice(1) : undefined;
}

/** Number of output units of the model's last layer (classes, for a classifier). Reads model.json, .keras, .h5 and .onnx. */
export async function readModelOutputUnits(modelPath: string): Promise<number | undefined> {
  if (isOnnxModelFile(modelPath)) {
    const units = (await readOnnxModelInfo(modelPath)).outputs.find((o) => o.shape.length === 1)?.shape[0];
    return typeof units === 'number' ? units : undefined;
  }
  const layers = layersOf(await readTopology(modelPath));
  for (let i = layers.length - 1; i >= 0; i--) {
    const units = (layers[i].config as { units?: unknown } | undefined)?.units;
    if (typeof units === 'number') return units;
  }
  return undefined;
}

interface LayerJson {
  class_name?: string;
  config?: Record<string, unknown>;
}

function layersOf(topology: unknown): LayerJson[] {
  const t = topology as { model_config?: { config?: unknown }; config?: unknown } | undefined;
  const config = (t?.model_config?.config ?? t?.config) as { layers?: unknown } | unknown[] | undefined;
  if (Array.isArray(config)) return config as LayerJson[];
  const layers = (config as { layers?: unknown } | undefined)?.layers;
  return Array.isArray(layers) ? (layers as LayerJson[]) : [];
}
