// Keras 2-style .h5 files (batch_input_shape, dtype strings, nested-list inbound_nodes, weight names
// with ":0", DepthwiseConv2D's depthwise_kernel) made from the Keras 3 fixtures with h5wasm: no real
// Keras 2 is available here (test/fixtures/keras/README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { loadModel } from '../../src/engine/io/index.js';

const FIXTURES = 'test/fixtures/keras';

type H5 = typeof import('h5wasm');

/** h5wasm itself (the library the loader reads with). */
export async function h5wasm(): Promise<H5> {
  // Load a Keras file first so the loader's console forwarder is in place when h5wasm instantiates.
  (await loadModel(join(FIXTURES, 'sequential_cnn.h5'))).model.dispose();
  const h5 = await import('h5wasm');
  await h5.ready;
  return h5;
}

/** Writes an HDF5 file with `build` in h5wasm's memory file system and returns its bytes. */
export function writeHdf5(h5: H5, build: (root: import('h5wasm').File) => void): Uint8Array {
  const memPath = `/test-${Math.random().toString(36).slice(2)}.h5`;
  const root = new h5.File(memPath, 'w');
  build(root);
  root.close();
  const bytes = h5.Module.FS.readFile(memPath);
  h5.Module.FS.unlink(memPath);
  return bytes;
}

type Json = Record<string, any>;

/** A Keras 3 config rewritten the way Keras 2 (tf.keras) writes it: batch_input_shape, dtype strings, nested-list inbound_nodes. */
function keras2Config(config: Json): Json {
  const plain = (value: any): any => {
    if (Array.isArray(value)) return value.map(plain);
    if (value === null || typeof value !== 'object') return value;
    if (value.class_name === 'DTypePolicy') return value.config.name;
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) if (k !== 'module' && k !== 'registered_name' && k !== 'build_config' && k !== 'shared_object_id') out[k] = plain(v);
    return out;
  };
  const layers = config.config.layers.map((layer: Json) => {
    const c = plain(layer.config);
    if (layer.class_name === 'InputLayer') {
      c.batch_input_shape = c.batch_shape;
      delete c.batch_shape;
      delete c.optional;
    }
    const inbound = layer.inbound_nodes.map((node: Json) => {
      const refs = Array.isArray(node.args[0]) ? node.args[0] : [node.args[0]];
      return refs.map((t: Json) => [...t.config.keras_history, {}]);
    });
    return { class_name: layer.class_name, config: c, name: layer.name, inbound_nodes: inbound };
  });
  return {
    class_name: 'Functional',
    config: { name: config.config.name, layers, input_layers: [config.config.input_layers], output_layers: [config.config.output_layers] },
  };
}

/** The fixture's .h5 rewritten in Keras 2's layout: weight names with `:0`, DepthwiseConv2D's `depthwise_kernel`. */
export function keras2File(h5: H5, name: string): Uint8Array {
  const archive = unzipSync(readFileSync(join(FIXTURES, `${name}.keras`)));
  const config = JSON.parse(Buffer.from(archive['config.json']).toString('utf8'));
  h5.Module.FS.writeFile('/source.h5', readFileSync(join(FIXTURES, `${name}.h5`)));
  const original = new h5.File('/source.h5', 'r');
  const bytes = writeHdf5(h5, (root) => {
    root.create_attribute('keras_version', '2.15.0');
    root.create_attribute('backend', 'tensorflow');
    root.create_attribute('model_config', JSON.stringify(keras2Config(config)));
    const weights = root.create_group('model_weights');
    const layerNames = config.config.layers.map((l: Json) => l.name as string);
    weights.create_attribute('layer_names', layerNames);
    for (const layer of config.config.layers as Json[]) {
      const group = weights.create_group(layer.name);
      const sourceGroup = original.get(`model_weights/${layer.name}`) as import('h5wasm').Group;
      const names = sourceGroup.attrs.weight_names.value as string[] | Float64Array;
      const renamed: string[] = [];
      if (Array.isArray(names) && names.length > 0) {
        const inner = group.create_group(layer.name);
        for (const weightName of names) {
          const short = weightName.split('/').pop()!;
          const keras2Short = `${layer.class_name === 'DepthwiseConv2D' && short === 'kernel' ? 'depthwise_kernel' : short}:0`;
          const dataset = original.get(`model_weights/${layer.name}/${weightName}`) as import('h5wasm').Dataset;
          inner.create_dataset({ name: keras2Short, data: dataset.value as Float32Array, shape: dataset.shape, dtype: '<f' });
          renamed.push(`${layer.name}/${keras2Short}`);
        }
      }
      group.create_attribute('weight_names', renamed.length > 0 ? renamed : new Float64Array(0), renamed.length > 0 ? null : [0]);
    }
  });
  original.close();
  h5.Module.FS.unlink('/source.h5');
  return bytes;
}
