// What the engine's bundles load for `@tensorflow/tfjs`: its core, layers and cpu backend, exported as the union
// package's node entry exports them (core first). The union also loads the converter, tf.data and the webgl backend,
// which the engine never uses and which made up about half of the bundle that every command compiled at start-up.
// The wasm backend is the engine's own dynamic import, loaded only when a command starts it.
'use strict';
const core = require('@tensorflow/tfjs-core');
const layers = require('@tensorflow/tfjs-layers');
const cpu = require('@tensorflow/tfjs-backend-cpu');

for (const source of [core, layers, cpu]) {
  for (const key of Object.keys(source)) {
    if (key === 'default' || Object.prototype.hasOwnProperty.call(exports, key)) continue;
    Object.defineProperty(exports, key, { enumerable: true, get: () => source[key] });
  }
}
exports.version = { 'tfjs-core': core.version_core, 'tfjs-backend-cpu': cpu.version_cpu, 'tfjs-layers': layers.version_layers };
