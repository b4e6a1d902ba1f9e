import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { DataConfig } from '../config/types.js';
import type { DataSummary } from '../../protocol/events.js';
import type { Dataset, DatasetTargets } from '../train/types.js';
import { UserError } from '../errors.js';
import { loadBuiltin } from './builtin.js';
import { ArraySource, makeDataset, type TargetArray } from './dataset.js';
import { loadImageFolder, loadImageGlob } from './imagefolder.js';
import { readNpy, type NpyArray } from './npy.js';
import { sampleShapeFits } from './shapes.js';
import { nchwToNhwc } from './layout.js';
import { splitIndices } from '../util/random.js';
import { loadSynthetic } from './synthetic.js';

export type { SampleSource } from './dataset.js';
export { readNpy, encodeNpy } from './npy.js';
export { makeDataset } from './dataset.js';

export interface ModelIO {
  /** One sample's shape, without the batch dimension, e.g. [28, 28, 1]. */
  inputShape: number[];
  classes: number;
  /**
   * Array files hold samples channels-first, [C, H, W], as the model's file takes them (an ONNX
   * model), while the runtime model takes [H, W, C]: npy samples are transposed once at load.
   * Built-in, synthetic and image-folder data are made in the runtime layout directly.
   */
  channelsFirst?: boolean;
  /**
   * Each model output's shape without the batch dimension, in output order, as the runtime model
   * gives it (null: any size). Float targets are checked against it; when absent, a single `y`
   * file's samples are taken as they are.
   */
  outputShapes?: (number | null)[][];
}

/**
 * Loads the data described by a config's "data" section. Relative paths resolve against
 * `base` (the config file, or its folder). `seed` is used when the section has none.
 */
export async function loadDataset(cfg: DataConfig, base: string, model: ModelIO, seed: number): Promise<Dataset> {
  const baseDir = base.endsWith('.json') || (existsSync(base) && statSync(base).isFile()) ? dirname(base) : base;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const effectiveSeed = cfg.seed ?? seed;
  const io: ModelIO = { inputShape: [...model.inputShape], classes: model.classes, channelsFirst: model.channelsFirst, outputShapes: model.outputShapes };
  const files = (y: string | string[] | undefined) => (y === undefined ? undefined : (Array.isArray(y) ? y : [y]).map(at));
  switch (cfg.format) {
    case 'npy':
      return loadNpyDataset({ ...cfg, x: at(cfg.x), y: files(cfg.y), xVal: cfg.xVal && at(cfg.xVal), yVal: files(cfg.yVal) }, io, effectiveSeed);
    case 'imagefolder':
      return loadImageFolder({ ...cfg, path: at(cfg.path), validationPath: cfg.validationPath && at(cfg.validationPath) }, io, effectiveSeed);
    case 'images':
      return loadImageGlob(cfg, baseDir, io, effectiveSeed);
    case 'builtin':
      return loadBuiltin(cfg.name, cfg, io, effectiveSeed);
    case 'synthetic':
      if (cfg.classes > model.classes) {
        throw new UserError(`labels go up to ${cfg.classes - 1} (${cfg.classes} classes) but the model has ${model.classes} output classes`, {
          field: 'data.classes', fix: `Set "classes" to at most ${model.classes}` });
      }
      return loadSynthetic(cfg, io, effectiveSeed);
    default:
      throw new UserError(`unknown data format '${(cfg as { format: string }).format}'`, { field: 'data.format', fix: 'Use "npy", "imagefolder", "images", "builtin" or "synthetic"' });
  }
}

/**
 * The one place that decides what the protocol says about a session's data: results on synthetic
 * data are labelled as meaningless wherever they are shown. `dataset` adds its description once loaded.
 */
export function summarizeData(cfg: DataConfig | undefined, dataset?: Dataset): DataSummary | undefined {
  if (!cfg) return undefined;
  return { format: cfg.format, synthetic: cfg.format === 'synthetic', ...(dataset ? { description: dataset.description } : {}) };
}

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The sample shape array files hold: the runtime's [H, W, C] as [C, H, W] when they are channels-first. */
function fileSampleShape(model: ModelIO): number[] {
  const shape = model.inputShape;
  return model.channelsFirst && shape.length === 3 ? [shape[2], shape[0], shape[1]] : shape;
}

/**
 * Inputs shaped [N, ...sample], [N, features] or with singleton dimensions dropped are accepted,
 * where the sample is [H, W, C], or [C, H, W] for a channels-first model (then transposed to [H, W, C]).
 */
function checkInputs(x: NpyArray, file: string, model: ModelIO): Float32Array | Uint8Array {
  if (x.dtype !== 'float32' && x.dtype !== 'uint8' && x.dtype !== 'float64') {
    throw new UserError(`inputs have dtype ${x.dtype}; expected float32 or uint8`, { file, fix: "Save them with x.astype('float32') (or uint8 pixels 0..255)" });
  }
  const expected = fileSampleShape(model);
  const layout = model.channelsFirst ? 'NCHW, as the ONNX model takes them' : 'NHWC';
  const sample = x.shape.slice(1);
  if (x.shape.length < 2 || !sampleShapeFits(sample, expected)) {
    throw new UserError(`inputs have shape [${x.shape.join(', ')}], i.e. samples of [${sample.join(', ')}], but the model input is [${expected.join(', ')}]`, {
      file, fix: `Save x shaped [N, ${expected.join(', ')}] (${layout}) or [N, ${product(expected)}]` });
  }
  const values = x.dtype === 'float64' ? Float32Array.from(x.data) : x.data;
  if (!transposesAtLoad(model)) return values;
  const [c, h, w] = expected;
  return nchwToNhwc(values, [x.shape[0], c, h, w]);
}

/** Whether channels-first samples are transposed to the runtime's channels-last layout (an image input with more than one channel). */
function transposesAtLoad(model: ModelIO): boolean {
  return Boolean(model.channelsFirst) && model.inputShape.length === 3 && model.inputShape[2] !== 1;
}

function checkLabels(y: NpyArray, file: string, count: number, classes: number): Int32Array {
  if (y.dtype === 'float32' || y.dtype === 'float64' || y.dtype === 'bool') {
    throw new UserError(`labels have dtype ${y.dtype}; expected integer class indices`, { file, fix: "Save them with y.astype('int64') (or uint8/int32)" });
  }
  if (!(y.shape.length === 1 || (y.shape.length === 2 && y.shape[1] === 1))) {
    throw new UserError(`labels have shape [${y.shape.join(', ')}]; expected [N] class indices`, {
      file, fix: 'Save integer class indices shaped [N] (for one-hot labels: y.argmax(axis=1))' });
  }
  if (y.shape[0] !== count) {
    throw new UserError(`there are ${y.shape[0]} labels for ${count} inputs`, { file, fix: 'Save as many labels as input samples' });
  }
  const labels = new Int32Array(count);
  let max = -Infinity, min = Infinity;
  for (let i = 0; i < count; i++) {
    const v = Number(y.data[i]);
    labels[i] = v;
    if (v > max) max = v;
    if (v < min) min = v;
  }
  if (min < 0) throw new UserError(`labels must be class indices ≥ 0, found ${min}`, { file, fix: 'Map the labels to 0..classes-1' });
  if (max >= classes) {
    throw new UserError(`labels go up to ${max} but the model has ${classes} output classes (labels 0..${classes - 1})`, {
      file, fix: `Use a model with ${max + 1} outputs or map the labels to 0..${classes - 1}` });
  }
  return labels;
}

/** What a set of target files holds: class labels, per-output float arrays, or nothing. */
type Targets =
  | { kind: 'none' }
  | { kind: 'labels'; labels: Int32Array }
  | { kind: 'values'; arrays: TargetArray[]; shapes: number[][] };

const INTEGER_DTYPES = new Set(['uint8', 'int8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'bool']);
const fieldName = (field: string, files: string[], k: number) => (files.length > 1 ? `data.${field}[${k}]` : `data.${field}`);

/**
 * Reads the target files of one split. One file of integer class indices ([N] or [N, 1]) for a
 * model with one multi-unit output: 'labels'. Anything else: 'values', one float array per model
 * output in output order, shaped like that output; integer class indices for a multi-unit output
 * become one-hot rows, other integer or boolean arrays (multi-label 0/1) become floats.
 */
function readTargets(files: string[] | undefined, field: 'y' | 'yVal', count: number, model: ModelIO): Targets {
  if (!files) return { kind: 'none' };
  // Without output shapes, the model is taken as one output of `classes` units (a classifier, or a regressor with 1 unit).
  const outputs = model.outputShapes ?? (model.classes > 0 ? [[model.classes]] : undefined);
  if (outputs && files.length !== outputs.length) {
    throw new UserError(`"${field}" names ${files.length} file${files.length === 1 ? '' : 's'} but the model has ${outputs.length} outputs`, {
      field: `data.${field}`, fix: `Give "${field}" as a list of ${outputs.length} .npy files, one per model output in output order` });
  }
  const arrays = files.map((file) => readNpy(file));
  const outputUnits = outputs ? product(outputs[0].map((d) => d ?? 0)) : undefined;
  const single = arrays[0];
  if (arrays.length === 1 && INTEGER_DTYPES.has(single.dtype) && single.dtype !== 'bool' && single.shape.length <= 2 && (single.shape[1] ?? 1) === 1 && outputUnits !== 1) {
    return { kind: 'labels', labels: checkLabels(single, files[0], count, model.classes) };
  }
  const shapes: number[][] = [];
  const targetArrays = arrays.map((y, k) => {
    const file = files[k];
    const where = { file, field: fieldName(field, files, k) };
    const output = outputs?.[k];
    const sample = y.shape.slice(1);
    if (y.shape[0] !== count) throw new UserError(`there are ${y.shape[0] ?? 0} targets for ${count} inputs`, { ...where, fix: 'Save as many targets as input samples' });
    if (INTEGER_DTYPES.has(y.dtype) && sample.length <= 1 && (sample[0] ?? 1) === 1 && output && output.length === 1 && typeof output[0] === 'number' && output[0] > 1) {
      shapes.push([output[0]]);
      return { data: oneHot(checkLabels(y, file, count, output[0]), output[0]), size: output[0] };
    }
    const vector = output?.length === 1 && typeof output[0] === 'number' && output[0] > 1 ? output[0] : undefined;
    if (vector && (y.dtype === 'float32' || y.dtype === 'float64') && sample.length <= 1 && (sample[0] ?? 1) === 1) {
      throw new UserError(`labels have dtype ${y.dtype}; expected integer class indices (or float targets shaped [N, ${vector}])`, {
        ...where, fix: "Save class indices with y.astype('int64'), or one-hot/multi-label targets shaped [N, " + vector + ']' });
    }
    if (!INTEGER_DTYPES.has(y.dtype) && y.dtype !== 'float32' && y.dtype !== 'float64') {
      throw new UserError(`targets have dtype ${y.dtype}; expected numbers`, { ...where, fix: "Save them with y.astype('float32')" });
    }
    let shape = sample.length > 0 ? sample : [1];
    let data = y.data instanceof Float32Array ? y.data : Float32Array.from(y.data as ArrayLike<number>);
    if (output) {
      const nchw = model.channelsFirst && output.length === 3 && output.every((d) => typeof d === 'number') && output[2] !== 1
        ? [output[2] as number, output[0] as number, output[1] as number] : undefined;
      if (nchw && sample.join() === nchw.join()) {
        data = nchwToNhwc(data, [count, ...nchw]);
      } else if (!sampleShapeFits(shape, output)) {
        const outputName = outputs.length > 1 ? `output ${k}` : 'the model output';
        throw new UserError(`targets have shape [${y.shape.join(', ')}], i.e. samples of [${sample.join(', ')}], but ${outputName} is [${output.map((d) => d ?? '?').join(', ')}]`, {
          ...where, fix: `Save targets shaped [N, ${output.map((d) => d ?? '?').join(', ')}]${outputUnits !== undefined && outputs.length === 1 ? ' (integer class indices shaped [N] for a classifier)' : ''}` });
      }
      if (output.every((d) => typeof d === 'number')) shape = output as number[];
    }
    shapes.push(shape);
    return { data, size: product(shape) };
  });
  return { kind: 'values', arrays: targetArrays, shapes };
}

function oneHot(labels: Int32Array, classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((label, i) => { out[i * classes + label] = 1; });
  return out;
}

function readSplit(xFile: string, yFiles: string[] | undefined, field: 'y' | 'yVal', model: ModelIO): { source: ArraySource; targets: Targets } {
  const x = readNpy(xFile);
  const values = checkInputs(x, xFile, model);
  const targets = readTargets(yFiles, field, x.shape[0], model);
  const source = new ArraySource(values, targets.kind === 'labels' ? targets.labels : undefined, product(model.inputShape), targets.kind === 'values' ? targets.arrays : []);
  return { source, targets };
}

const describeTargets = (t: Targets) => (t.kind === 'values' ? `float targets [${t.shapes.map((s) => `[${s.join(', ')}]`).join(', ')}]` : t.kind === 'labels' ? 'class labels' : 'no targets');

function loadNpyDataset(cfg: { x: string; y?: string[]; xVal?: string; yVal?: string[]; validationSplit?: number }, model: ModelIO, seed: number): Dataset {
  if (cfg.xVal && cfg.y && !cfg.yVal) {
    throw new UserError('xVal is given without yVal', { field: 'data.yVal', fix: 'Add yVal (the targets of xVal), or remove xVal to split the training data' });
  }
  if (cfg.yVal && (!cfg.xVal || !cfg.y)) {
    throw new UserError(cfg.xVal ? 'yVal is given but y is not' : 'yVal is given without xVal', { field: 'data.yVal', fix: cfg.xVal ? 'Add y, or remove yVal for unlabelled data' : 'Add xVal (the inputs of yVal), or remove yVal' });
  }
  const train = readSplit(cfg.x, cfg.y, 'y', model);
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  let validation: ArraySource, split: { train: Int32Array; validation: Int32Array };
  if (cfg.xVal) {
    const val = readSplit(cfg.xVal, cfg.yVal, 'yVal', model);
    const sameShapes = train.targets.kind !== 'values' || (val.targets.kind === 'values' && val.targets.shapes.map(String).join() === train.targets.shapes.map(String).join());
    if (val.targets.kind !== train.targets.kind || !sameShapes) {
      throw new UserError(`yVal holds ${describeTargets(val.targets)} but y holds ${describeTargets(train.targets)}`, { field: 'data.yVal', fix: 'Save validation targets of the same kind and shape as y' });
    }
    validation = val.source;
    split = { train: all(train.source.count), validation: all(validation.count) };
  } else {
    validation = train.source;
    split = splitIndices(train.source.count, cfg.validationSplit ?? 0.2, seed);
  }
  const targets: DatasetTargets = train.targets.kind;
  return makeDataset({
    sampleShape: [...model.inputShape],
    classes: targets === 'labels' ? model.classes : 0,
    targets,
    targetShapes: train.targets.kind === 'values' ? train.targets.shapes : undefined,
    description: `npy ${cfg.x}${transposesAtLoad(model) ? ' (NCHW, transposed to NHWC at load)' : ''}${targets === 'labels' ? '' : `, ${describeTargets(train.targets)}`}, ${split.train.length} train + ${split.validation.length} validation`,
    train: { source: train.source, indices: split.train },
    validation: { source: validation, indices: split.validation },
    seed,
  });
}
