import type * as tf from '@tensorflow/tfjs';
import { basename } from 'node:path';
import type { ExportFormat } from '../config/types.js';
import { encodeModel, MODEL_JSON, type LoadedModel } from '../io/index.js';
import { encodeKerasModel, kerasWriteProblem } from '../io/keras/write.js';
import { encodeOnnxModel, onnxWriteProblem } from '../io/onnx/write.js';
import { toInferenceForm } from '../surgery/inference-form.js';

/** The files of a session's output folder, apart from the report. */
export interface SessionOutput {
  /** The model's own file in the folder: `model.json`, or the Keras file's name (`model.keras`). */
  modelFile: string;
  /** Bytes on disk of the model (model.json plus shards, or the Keras file). */
  modelBytes: number;
  /** Relative name → content. */
  files: Record<string, string | Uint8Array>;
  notes: string[];
  /** The written .onnx file's bytes, when the pruned model was saved as ONNX (for checks in ONNX Runtime). */
  onnxBytes?: Uint8Array;
}

/**
 * The `export` formats' files: a TF.js copy, and a TF.js copy in inference form (batch norms folded,
 * ReLUs fused): `inferenceModel` when the caller already built it (the session times it too), else built here.
 */
async function exportFiles(pruned: tf.LayersModel, loaded: LoadedModel, formats: readonly ExportFormat[], inferenceModel?: tf.LayersModel): Promise<Record<string, string | Uint8Array>> {
  const files: Record<string, string | Uint8Array> = {};
  if (formats.includes('tfjs')) Object.assign(files, (await tfjsFiles(pruned, loaded, 'tfjs/')).files);
  if (formats.includes('inference')) {
    const built = inferenceModel ? undefined : toInferenceForm(pruned).model;
    try {
      Object.assign(files, (await tfjsFiles(inferenceModel ?? built!, loaded, 'inference/')).files);
    } finally {
      built?.dispose();
    }
  }
  return files;
}

async function tfjsFiles(model: tf.LayersModel, loaded: LoadedModel, prefix = ''): Promise<{ files: Record<string, string | Uint8Array>; bytes: number }> {
  const encoded = await encodeModel(model, { quantization: loaded.quantization });
  const files: Record<string, string | Uint8Array> = { [`${prefix}${MODEL_JSON}`]: encoded.modelJsonText };
  for (const shard of encoded.shards) files[`${prefix}${shard.name}`] = shard.data;
  return { files, bytes: encoded.fileBytes };
}

/**
 * The pruned model in the format it came in: a Keras file as `<model file name>` (same kind and
 * version style), an ONNX file as the original graph with narrowed weights, a TF.js model as model.json and shards; plus the `export` formats asked for.
 * A Keras model whose layers the method rebuilt (DSP's per-group layers) is written as TF.js, with a note.
 */
export async function encodeSessionOutput(pruned: tf.LayersModel, loaded: LoadedModel, modelPath: string, exportFormats: readonly ExportFormat[], inferenceModel?: tf.LayersModel): Promise<SessionOutput> {
  const notes: string[] = [];
  const onnx = loaded.onnx;
  const onnxProblem = onnx ? onnxWriteProblem(pruned, onnx) : undefined;
  if (onnx && !onnxProblem) {
    const modelFile = basename(modelPath);
    const bytes = await encodeOnnxModel(pruned, onnx, modelPath);
    const files: Record<string, string | Uint8Array> = { [modelFile]: bytes };
    Object.assign(files, await exportFiles(pruned, loaded, exportFormats, inferenceModel));
    return { modelFile, modelBytes: bytes.byteLength, files, notes, onnxBytes: bytes };
  }
  if (onnx && onnxProblem) notes.push(`Saved as a TF.js layers model (model.json), not as ${basename(modelPath)}: ${onnxProblem}, which the ONNX graph cannot hold.`);
  const keras = loaded.keras;
  const problem = keras ? kerasWriteProblem(pruned, keras) : undefined;
  if (keras && !problem) {
    const modelFile = basename(modelPath);
    const bytes = await encodeKerasModel(pruned, keras, modelPath);
    const files: Record<string, string | Uint8Array> = { [modelFile]: bytes };
    Object.assign(files, await exportFiles(pruned, loaded, exportFormats, inferenceModel));
    return { modelFile, modelBytes: bytes.byteLength, files, notes };
  }
  if (keras && problem) notes.push(`Saved as a TF.js layers model (model.json), not as ${basename(modelPath)}: ${problem}, which Keras cannot load into its original layout.`);
  const { files, bytes } = await tfjsFiles(pruned, loaded);
  // A TF.js model is saved as TF.js already: only the inference form adds files.
  Object.assign(files, await exportFiles(pruned, loaded, exportFormats.filter((f) => f !== 'tfjs'), inferenceModel));
  return { modelFile: MODEL_JSON, modelBytes: bytes, files, notes };
}
