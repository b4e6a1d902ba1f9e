import { UserError } from '../errors.js';
import { storedWeightBytes, type WeightEntryJson } from './format.js';

interface NonFinite {
  name: string;
  nan: number;
  infinite: number;
  size: number;
}

/**
 * Refuses float weights that hold NaN or ±Infinity, as the values will be after dequantization.
 * One pass over the shard bytes, before TF.js copies them into tensors. Integer and bool weights
 * cannot hold either; optimizer state is not loaded and is skipped.
 */
export function checkFiniteWeights(weightData: ArrayBuffer, specs: WeightEntryJson[], file: string): void {
  const bad: NonFinite[] = [];
  let offset = 0;
  for (const spec of specs) {
    const bytes = storedWeightBytes(spec);
    if (spec.dtype === 'float32' && spec.group !== 'optimizer') {
      const found = countNonFinite(weightData, offset, bytes, spec);
      if (found.nan + found.infinite > 0) bad.push(found);
    }
    offset += bytes;
  }
  if (bad.length === 0) return;
  const first = bad[0];
  const kind = first.nan > 0 && first.infinite > 0 ? 'NaN and infinite' : first.nan > 0 ? 'NaN' : 'infinite';
  const more = bad.length > 1 ? `; ${bad.length - 1} more weight${bad.length > 2 ? 's' : ''} too (${bad.slice(1, 4).map((b) => b.name).join(', ')}${bad.length > 4 ? ', …' : ''})` : '';
  throw new UserError(`weight ${first.name} holds ${kind} values (${first.nan + first.infinite} of ${first.size})${more}`, {
    file, fix: 'Re-export the model from a checkpoint whose weights are all finite (NaN or infinite weights usually mean its training diverged)',
  });
}

function countNonFinite(buffer: ArrayBuffer, offset: number, bytes: number, spec: WeightEntryJson): NonFinite {
  const result: NonFinite = { name: spec.name, nan: 0, infinite: 0, size: spec.shape.reduce((n, d) => n * d, 1) };
  const q = spec.quantization;
  if (q?.dtype === 'float16') {
    // A half float is NaN or infinite when its exponent bits are all ones; NaN when its mantissa is not zero.
    const halves = view(buffer, offset, bytes, Uint16Array);
    for (let i = 0; i < halves.length; i++) {
      if ((halves[i] & 0x7c00) === 0x7c00) {
        if (halves[i] & 0x03ff) result.nan++; else result.infinite++;
      }
    }
    return result;
  }
  if (q) {
    // Affine: value = q × scale + min, stored as float32; finite scale and min can still overflow float32.
    // The map is monotone, so when both ends of the code range are finite every value is.
    const scale = q.scale as number;
    const min = q.min as number;
    const top = q.dtype === 'uint8' ? 0xff : 0xffff;
    if (Number.isFinite(Math.fround(min)) && Number.isFinite(Math.fround(top * scale + min))) return result;
    const codes = q.dtype === 'uint8' ? new Uint8Array(buffer, offset, bytes) : view(buffer, offset, bytes, Uint16Array);
    for (let i = 0; i < codes.length; i++) {
      const v = Math.fround(codes[i] * scale + min);
      if (v - v !== 0) { if (v !== v) result.nan++; else result.infinite++; }
    }
    return result;
  }
  const values = view(buffer, offset, bytes, Float32Array);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    // v - v is 0 for every finite v and NaN for NaN and ±Infinity.
    if (v - v !== 0) { if (v !== v) result.nan++; else result.infinite++; }
  }
  return result;
}

/** A typed view of the bytes, copied when a preceding quantized weight left them unaligned. */
function view<T extends Uint16Array | Float32Array>(buffer: ArrayBuffer, offset: number, bytes: number, type: { new (b: ArrayBuffer, o?: number, l?: number): T; BYTES_PER_ELEMENT: number }): T {
  const length = bytes / type.BYTES_PER_ELEMENT;
  return offset % type.BYTES_PER_ELEMENT === 0 ? new type(buffer, offset, length) : new type(buffer.slice(offset, offset + bytes));
}

/** checkFiniteWeights for float32 weights held as separate arrays (Keras and ONNX files), with the same message. */
export function checkFiniteArrays(weights: readonly { name: string; shape: number[]; values: Float32Array }[], file: string): void {
  const buffer = new Float32Array(weights.reduce((n, w) => n + w.values.length, 0));
  let offset = 0;
  for (const w of weights) {
    buffer.set(w.values, offset);
    offset += w.values.length;
  }
  checkFiniteWeights(buffer.buffer, weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })), file);
}
