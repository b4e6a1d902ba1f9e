import { test } from 'node:test';
import { checkSessionAtFlopsTarget } from '../helpers/fixtures.js';

test('an OCSPruner session writes a physically smaller model at the FLOPs target', async () => {
  await checkSessionAtFlopsTarget('ocspruner', {
    train: { epochs: 5, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 3 },
    ocspruner: { monitorStartEpoch: 0, slStartEpoch: 0, slEndEpoch: 2, reg: 0.05, regDelta: 0.05 },
  });
});
