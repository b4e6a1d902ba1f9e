import { test } from 'node:test';
import { checkSessionAtFlopsTarget } from '../helpers/fixtures.js';

test('an i-SpaSP session writes a physically smaller model at the FLOPs target', async () => {
  await checkSessionAtFlopsTarget('ispasp', {
    train: { epochs: 1, batchSize: 16, learningRate: 0.02, maxStepsPerEpoch: 3 },
    ispasp: { calibrationSamples: 48, iterations: 10, blockFinetuneEpochs: 0 },
  });
});
