import type { OutputAgreement } from '../../protocol/events.js';

/** Largest |actual − reference|, and that over the reference's largest magnitude (so outputs near zero do not inflate it). */
export function outputAgreement(actual: ArrayLike<number>, reference: ArrayLike<number>): OutputAgreement {
  let maxAbs = 0;
  let scale = 0;
  for (let k = 0; k < reference.length; k++) {
    const diff = Math.abs(actual[k] - reference[k]);
    // NaN counts as an infinite difference.
    maxAbs = Math.max(maxAbs, Number.isNaN(diff) ? Infinity : diff);
    scale = Math.max(scale, Math.abs(reference[k]));
  }
  return { maxAbsDifference: maxAbs, maxRelDifference: scale > 0 ? maxAbs / scale : maxAbs === 0 ? 0 : Infinity };
}
