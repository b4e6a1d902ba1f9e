// Preloaded (`node -r`) into a real CLI or engine run: on exit, writes to $PRUNELENS_PROBE_OUT what the run loaded —
// the tfjs backends registered and the backends that kernels were registered for (tfjs keeps both on the global
// object, also inside a bundle), and the modules Node loaded (file paths; the engine's own files when run from source).
'use strict';
const { writeFileSync } = require('node:fs');

process.on('exit', () => {
  const out = process.env.PRUNELENS_PROBE_OUT;
  if (!out) return;
  const engine = globalThis._tfengine;
  const kernels = globalThis._tfGlobals && globalThis._tfGlobals.get('kernelRegistry');
  const kernelBackends = kernels ? [...new Set([...kernels.values()].map((k) => k.backendName))].sort() : [];
  writeFileSync(out, JSON.stringify({
    backends: engine ? Object.keys(engine.registryFactory).sort() : [],
    kernelBackends,
    modules: Object.keys(require.cache),
  }));
});
