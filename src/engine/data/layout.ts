/**
 * Channels-first ↔ channels-last: ONNX models take and give [N, C, H, W], the runtime model
 * (TF.js) [N, H, W, C]. Plain loops over typed arrays, no tfjs, so data loading and config checks can use them.
 */

type Values = Float32Array | Uint8Array;

/** [N, C, H, W] values as [N, H, W, C] (the same array type). */
export function nchwToNhwc<T extends Values>(values: T, shape: readonly number[]): T {
  const [n, c, h, w] = shape;
  const out = new (values.constructor as new (length: number) => T)(values.length);
  const plane = h * w;
  for (let s = 0; s < n; s++) {
    const base = s * c * plane;
    for (let ch = 0; ch < c; ch++) {
      const from = base + ch * plane;
      for (let p = 0; p < plane; p++) out[base + p * c + ch] = values[from + p];
    }
  }
  return out;
}

/** [N, H, W, C] values as [N, C, H, W]. */
export function nhwcToNchw<T extends Values>(values: T, shape: readonly number[]): T {
  const [n, h, w, c] = shape;
  const out = new (values.constructor as new (length: number) => T)(values.length);
  const plane = h * w;
  for (let s = 0; s < n; s++) {
    const base = s * c * plane;
    for (let ch = 0; ch < c; ch++) {
      const to = base + ch * plane;
      for (let p = 0; p < plane; p++) out[to + p] = values[base + p * c + ch];
    }
  }
  return out;
}

/** A channels-last shape [N, H, W, C] as channels-first [N, C, H, W]; other ranks unchanged. */
export function channelsFirstShape(shape: readonly number[]): number[] {
  return shape.length === 4 ? [shape[0], shape[3], shape[1], shape[2]] : [...shape];
}

/** A channels-first shape [N, C, H, W] as channels-last [N, H, W, C]; other ranks unchanged. */
export function channelsLastShape(shape: readonly number[]): number[] {
  return shape.length === 4 ? [shape[0], shape[2], shape[3], shape[1]] : [...shape];
}
