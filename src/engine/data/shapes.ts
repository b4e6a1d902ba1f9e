/** Loads nothing (no tfjs): the editor's config checks apply the same rule as the data loaders. */

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const withoutOnes = (shape: number[]) => shape.filter((d) => d !== 1).join();

/**
 * Whether samples shaped `sample` feed a model input: the same shape (null dimensions match
 * anything), or, when the input is fully known, the same number of values when either side is
 * flat or they differ only in singleton dimensions (NHWC images feed a model that takes flat features).
 */
export function sampleShapeFits(sample: number[], modelInput: readonly (number | null)[]): boolean {
  if (sample.length === modelInput.length && modelInput.every((d, i) => d === null || d === sample[i])) return true;
  if (modelInput.some((d) => d === null)) return false;
  const input = modelInput as number[];
  return product(sample) === product(input) && (sample.length === 1 || input.length === 1 || withoutOnes(sample) === withoutOnes(input));
}
