import * as tf from '@tensorflow/tfjs';
import { promises as fs } from 'node:fs';
import { resolve } from 'node:path';
import { firstLine, UserError } from '../../errors.js';
import { checkLayerGraph } from '../check-graph.js';
import { checkFiniteArrays } from '../check-values.js';
import type { StoredDtype } from '../format.js';
import { formatShape } from '../../../protocol/format.js';
import { readModelFile } from '../paths.js';
import { decodeModel, ExternalData, REEXPORT } from './proto.js';
import { importOnnxGraph } from './import.js';
import type { OnnxSerialization } from './record.js';
import './layers.js';

export interface LoadedOnnxModel {
  model: tf.LayersModel;
  weightBytes: number;
  fileBytes: number;
  quantization: Map<string, StoredDtype>;
  onnx: OnnxSerialization;
}

export { isOnnxPath } from './path.js';

/** Reads an .onnx file (and external data beside it) into a runtime model with the record a writer needs. */
export async function loadOnnxModel(modelPath: string): Promise<LoadedOnnxModel> {
  const path = resolve(modelPath);
  const file = modelPath;
  const bytes = await readModelFile(modelPath, REEXPORT);
  const proto = decodeModel(bytes, file);
  const external = new ExternalData(path, file);
  await external.preload(proto.graph!.initializer);
  const { topology, weights, record } = importOnnxGraph(proto, file, external);
  checkLayerGraph(topology.config as Record<string, unknown>, file);
  let model: tf.LayersModel;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topology } as never);
  } catch (err) {
    throw new UserError(`the imported graph could not be built: ${firstLine(err)}`, { file, fix: REEXPORT });
  }
  try {
    const quantization = new Map<string, StoredDtype>();
    const checked: { name: string; shape: number[]; values: Float32Array }[] = [];
    let weightBytes = 0;
    for (const layer of model.layers) {
      if (layer.weights.length === 0) continue;
      const given = weights.get(layer.name);
      const tensors = layer.weights.map((w) => {
        const short = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
        const value = given?.get(short);
        if (!value) throw new UserError(`layer "${layer.name}" has no value for its ${short}`, { file, fix: REEXPORT });
        if (formatShape(value.shape) !== formatShape(w.shape as number[])) {
          throw new UserError(`layer "${layer.name}"'s ${short} has shape ${formatShape(value.shape)} in the file, but needs ${formatShape(w.shape as number[])}`, { file, fix: REEXPORT });
        }
        checked.push({ name: w.originalName, shape: value.shape, values: value.values });
        quantization.set(w.originalName, 'float32');
        weightBytes += value.values.length * 4;
        return tf.tensor(value.values, value.shape, 'float32');
      });
      layer.setWeights(tensors);
      tf.dispose(tensors);
    }
    checkFiniteArrays(checked, file);
    return { model, weightBytes, fileBytes: bytes.length + (await externalBytes(proto, path)), quantization, onnx: record };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/** Bytes of the external data files the model reads (counted once each). */
async function externalBytes(proto: ReturnType<typeof decodeModel>, path: string): Promise<number> {
  const files = new Set<string>();
  for (const t of proto.graph!.initializer) {
    const location = t.external_data?.find((e) => e.key === 'location')?.value;
    if (t.data_location === 1 && location) files.add(location);
  }
  let total = 0;
  for (const f of files) total += (await fs.stat(resolve(path, '..', f))).size;
  return total;
}
