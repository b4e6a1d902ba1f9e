import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { DataConfig } from '../config/types.js';
import type { DataSummary } from '../../protocol/events.js';
import type { Dataset } from '../train/types.js';
import { UserError } from '../errors.js';
import { loadBuiltin } from './builtin.js';
import { ArraySource, makeDataset } from './dataset.js';
import { loadImageFolder } from './imagefolder.js';
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
}

/**
 * Loads the data described by a config's "data" section. Relative paths resolve against
 * `base` (the config file, or its folder). `seed` is used when the section has none.
 */
export async function loadDataset(cfg: DataConfig, base: string, model: ModelIO, seed: number): Promise<Dataset> {
  const baseDir = base.endsWith('.json') || (existsSync(base) && statSync(base).isFile()) ? dirname(base) : base;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  const effectiveSeed = cfg.seed ?? seed;
  const io = { inputShape: [...model.inputShape], classes: model.classes, channelsFirst: model.channelsFirst };
  switch (cfg.format) {
    case 'npy':
      return loadNpyDataset({ ...cfg, x: at(cfg.x), y: at(cfg.y), xVal: cfg.xVal && at(cfg.xVal), yVal: cfg.yVal && at(cfg.yVal) }, io, effectiveSeed);
    case 'imagefolder':
      return loadImageFolder({ ...cfg, path: at(cfg.path), validationPath: cfg.validationPath && at(cfg.validationPath) }, io, effectiveSeed);
    case 'builtin':
      return loadBuiltin(cfg.name, cfg, io, effectiveSeed);
    case 'synthetic':
      if (cfg.classes > model.classes) {
        throw new UserError(`labels go up to ${cfg.classes - 1} (${cfg.classes} classes) but the model has ${model.classes} output classes`, {
          field: 'data.classes', fix: `Set "classes" to at most ${model.classes}` });
      }
      return loadSynthetic(cfg, io, effectiveSeed);
    default:
      throw new UserError(`unknown data format '${(cfg as { format: string }).format}'`, { field: 'data.format', fix: 'Use "npy", "imagefolder", "builtin" or "synthetic"' });
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

function readPair(xFile: string, yFile: string, model: ModelIO): ArraySource {
  const x = readNpy(xFile);
  const values = checkInputs(x, xFile, model);
  const labels = checkLabels(readNpy(yFile), yFile, x.shape[0], model.classes);
  return new ArraySource(values, labels, product(model.inputShape));
}

function loadNpyDataset(cfg: { x: string; y: string; xVal?: string; yVal?: string; validationSplit?: number }, model: ModelIO, seed: number): Dataset {
  if (Boolean(cfg.xVal) !== Boolean(cfg.yVal)) {
    throw new UserError('xVal and yVal must be given together', { field: cfg.xVal ? 'data.yVal' : 'data.xVal', fix: 'Add the missing one, or remove both to split the training data' });
  }
  const train = readPair(cfg.x, cfg.y, model);
  const all = (n: number) => Int32Array.from({ length: n }, (_, i) => i);
  let validation: ArraySource, split: { train: Int32Array; validation: Int32Array };
  if (cfg.xVal && cfg.yVal) {
    validation = readPair(cfg.xVal, cfg.yVal, model);
    split = { train: all(train.count), validation: all(validation.count) };
  } else {
    validation = train;
    split = splitIndices(train.count, cfg.validationSplit ?? 0.2, seed);
  }
  return makeDataset({
    sampleShape: [...model.inputShape],
    classes: model.classes,
    description: `npy ${cfg.x}${transposesAtLoad(model) ? ' (NCHW, transposed to NHWC at load)' : ''}, ${split.train.length} train + ${split.validation.length} validation`,
    train: { source: train, indices: split.train },
    validation: { source: validation, indices: split.validation },
    seed,
  });
}
