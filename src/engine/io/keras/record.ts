import type { KerasStyle } from './config.js';

/** `.keras`: Keras 3's zip of config.json, model.weights.h5 and metadata.json. `.h5`: the HDF5 format of Keras 2 and Keras 3's legacy saver. */
export type KerasFileKind = 'keras' | 'h5';

/** Where one weight of the runtime model lives in the Keras file. */
export interface KerasWeightLocation {
  /** Layer name (the same in Keras and in the runtime model). */
  layer: string;
  /** The runtime weight's name (`layer/kernel`), as `tf.LayerVariable.originalName`. */
  weight: string;
  /**
   * HDF5 path of the dataset: in `.keras`, inside model.weights.h5, keyed by class
   * (`layers/conv2d_1/vars/0`); in `.h5`, `model_weights/<layer>/<weight name>` as the
   * layer group's `weight_names` lists it.
   */
  path: string;
}

/**
 * What a writer needs to write a pruned model back in the format it came in, apart from the
 * runtime model: the file's kind and Keras version style, the model config exactly as the file
 * holds it (layer names, options and everything but widths are written back from it), the
 * file's other metadata, and where every weight lives.
 */
export interface KerasSerialization {
  kind: KerasFileKind;
  style: KerasStyle;
  /** `keras_version` as the file records it ('' when absent). */
  kerasVersion: string;
  /** `.h5`: the `backend` attribute. */
  backend?: string;
  /** The model config (`{class_name, config, ...}`) as parsed from config.json or the `model_config` attribute, untouched. */
  modelConfig: Record<string, unknown>;
  /** `.keras`: metadata.json as parsed. */
  metadata?: Record<string, unknown>;
  /** `.keras`: the names of the archive's entries, in archive order. */
  archiveEntries?: string[];
  /** `.h5`: the root attributes other than `model_config` (e.g. `training_config`), as strings. */
  rootAttributes?: Record<string, string>;
  /** Every weight of the runtime model, layer by layer in `model.layers` order, each layer's weights in their order. */
  weights: KerasWeightLocation[];
  /** `.keras`: each layer's class-keyed group in model.weights.h5 (`layers/re_lu`), by layer name, for every layer in `model.layers` order. */
  layerGroups?: Record<string, string>;
}
