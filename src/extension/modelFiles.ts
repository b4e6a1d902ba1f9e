/**
 * Cheap, tfjs-free reads of model and data files for the editor's diagnostics: a model's input
 * shape from its model.json topology, an .npy array's shape from its header. vscode-free.
 */
import { readFile } from 'node:fs/promises';
import { readNpyHeader } from '../engine/data/npy.js';

/** Input shape without the batch dimension, e.g. [28, 28, 1]; undefined when not found. */
export async function readModelInputShape(modelJsonPath: string): Promise<(number | null)[] | undefined> {
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as Record<string, unknown>;
  return inputShapeOfTopology(json.modelTopology);
}

/** Number of output units of the model's last layer (classes, for a classifier). */
export async function readModelOutputUnits(modelJsonPath: string): Promise<number | undefined> {
  const json = JSON.parse(await readFile(modelJsonPath, 'utf8')) as Record<string, unknown>;
  const layers = layersOf(json.modelTopology);
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

export function inputShapeOfTopology(topology: unknown): (number | null)[] | undefined {
  for (const layer of layersOf(topology)) {
    const c = layer.config ?? {};
    const shape = (c.batch_input_shape ?? c.batchInputShape) as (number | null)[] | undefined;
    if (Array.isArray(shape)) return shape.slice(1);
    const inputShape = (c.input_shape ?? c.inputShape) as (number | null)[] | undefined;
    if (Array.isArray(inputShape)) return inputShape;
    if (layer.class_name === 'InputLayer') break;
  }
  return undefined;
}

/** Shape from a NumPy .npy header, checked as the engine checks it. */
export async function readNpyShape(npyPath: string): Promise<number[]> {
  return (await readNpyHeader(npyPath)).shape;
}

/**
 * Whether samples shaped `sample` feed a model input, by the engine's rule: the same shape
 * (null dims match anything), or the same number of values when either side is flat or they
 * differ only in singleton dimensions (NHWC images feed a model that takes flat features).
 */
export function sampleShapeMatches(sample: number[], modelInput: (number | null)[]): boolean {
  if (sample.length === modelInput.length && modelInput.every((d, i) => d === null || d === sample[i])) return true;
  if (modelInput.some((d) => d === null)) return false;
  const input = modelInput as number[];
  const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
  const withoutOnes = (shape: number[]) => shape.filter((d) => d !== 1).join();
  return product(sample) === product(input) && (sample.length === 1 || input.length === 1 || withoutOnes(sample) === withoutOnes(input));
}
