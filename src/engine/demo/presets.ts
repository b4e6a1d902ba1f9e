import type { MethodName } from '../../protocol/methods.js';
import type { TrainConfig } from '../config/types.js';

export interface DemoMethodSettings {
  /** Overrides of the method phase's training settings. */
  train?: Partial<TrainConfig>;
  /** The method's config section. */
  options?: Record<string, unknown>;
}

/**
 * Settings sized for the demo CNN (`buildDemoCnn`) and one-epoch phases, used by `npm run demo`
 * and bench/method-table.ts. The schema's defaults follow the papers' CIFAR/ImageNet runs:
 * SSR's λ = 0.15 zeroes a small batch-norm network (the group lasso zeroes a group when
 * ‖∇_g L‖ < λ, so λ must be of the order of the loss gradient per group); GoPrune's U threshold
 * (≈1.0) sits below most group norms (≈1.4–1.8) and the weak coupling β only nudges W;
 * OCSPruner searches for 30–110 epochs, here within one 3-epoch cycle.
 */
export const DEMO_METHOD_SETTINGS: Partial<Record<MethodName, DemoMethodSettings>> = {
  goprune: { options: { lambda: 0.012, beta: 0.01, rho1: 0.01, rho2: 0.01 } },
  ssr: { options: { lambda: 0.02, updateEvery: 50 } },
  ocspruner: { train: { epochs: 3 }, options: { monitorStartEpoch: 0, slStartEpoch: 1, slEndEpoch: 2, stabilityThreshold: 0.99 } },
  ispasp: { options: { calibrationSamples: 512 } },
};
