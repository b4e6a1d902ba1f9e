/**
 * Weight quantization as tensorflowjs_converter writes it (`--quantize_uint8`, `--quantize_uint16`,
 * `--quantize_float16`), so a pruned model is stored the way its input was. TF.js decodes
 * uint8/uint16 as `q × scale + min` and float16 as IEEE half precision.
 */
import type { QuantizationMap, QuantizedDtype, StoredDtype, WeightQuantizationJson } from './format.js';

export interface QuantizedWeight {
  bytes: Uint8Array;
  quantization: WeightQuantizationJson;
}

const QUANT_MAX: Readonly<Record<'uint8' | 'uint16', number>> = { uint8: 255, uint16: 65535 };
/** Largest finite float16. */
const FLOAT16_MAX = 65504;

/** numpy's `np.round`: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Affine quantization with the converter's range: min and max of the weight itself, with the
 * minimum nudged so that 0.0 maps to an integer when the range covers it (zero padding and
 * pruned-to-zero values stay exact). Computed in double precision. `undefined` when the weight
 * holds a NaN or infinity, which no scale can represent.
 */
function quantizeAffine(values: Float32Array, dtype: 'uint8' | 'uint16'): QuantizedWeight | undefined {
  const quantMax = QUANT_MAX[dtype];
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
    if (v !== v) return undefined; // NaN
  }
  const quantized = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  const bytes = new Uint8Array(quantized.buffer);
  if (values.length === 0) return { bytes, quantization: { dtype, scale: 1, min: 0 } };
  if (!Number.isFinite(min) || !Number.isFinite(max)) return undefined;
  // A constant weight is all zeros with the constant as min, as the converter writes it.
  if (min === max) return { bytes, quantization: { dtype, scale: 1, min } };
  const scale = (max - min) / quantMax;
  let low = min;
  let high = max;
  if (min <= 0 && max >= 0) {
    low = -roundHalfEven(-min / scale) * scale;
    high = quantMax * scale + low;
  }
  for (let i = 0; i < values.length; i++) {
    const clipped = Math.min(Math.max(values[i], low), high);
    quantized[i] = Math.min(quantMax, Math.max(0, roundHalfEven((clipped - low) / scale)));
  }
  return { bytes, quantization: { dtype, scale, min: low } };
}

const float32Scratch = new Float32Array(1);
const bitsScratch = new Uint32Array(float32Scratch.buffer);

/** IEEE half-precision bits of `value`, rounded to nearest even (as numpy's `astype(np.float16)`). */
export function toFloat16Bits(value: number): number {
  float32Scratch[0] = value;
  const bits = bitsScratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half: shift the full significand (implicit 1 included) into 10 bits.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    const rest = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let half = significand >>> shift;
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa steps the exponent, up to infinity, as it should.
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** `undefined` when a finite value lies beyond float16's range and would turn into infinity. */
function quantizeFloat16(values: Float32Array): QuantizedWeight | undefined {
  const halves = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v) && Math.abs(v) > FLOAT16_MAX) return undefined;
    halves[i] = toFloat16Bits(v);
  }
  return { bytes: new Uint8Array(halves.buffer), quantization: { dtype: 'float16' } };
}

/**
 * The weight stored as `dtype`, little-endian as TF.js reads it; `undefined` when its values
 * cannot be stored that way (then it is saved as float32).
 */
export function quantizeWeight(values: Float32Array, dtype: QuantizedDtype): QuantizedWeight | undefined {
  return dtype === 'float16' ? quantizeFloat16(values) : quantizeAffine(values, dtype);
}

/** A per-group layer a method built from one layer (`<layer>_g<N>`) has that layer's weight names after the suffix. */
const PER_GROUP_LAYER = /^(.*)_g\d+(\/[^/]+)$/;

/**
 * The storage dtype of a saved weight: its own, that of the layer it was rebuilt from, or, for a
 * weight a method added (DSP's channel selections), the dtype most of the input's weights had:
 * a quantized model stays quantized throughout, so its file shrinks with its parameters.
 */
export function storageDtypeOf(name: string, quantization: QuantizationMap): QuantizedDtype | undefined {
  const match = PER_GROUP_LAYER.exec(name);
  const stored = quantization.get(name) ?? (match ? quantization.get(match[1] + match[2]) : undefined) ?? mostCommonDtype(quantization);
  return stored === 'float32' ? undefined : stored;
}

function mostCommonDtype(quantization: QuantizationMap): StoredDtype | undefined {
  const counts = new Map<StoredDtype, number>();
  for (const dtype of quantization.values()) counts.set(dtype, (counts.get(dtype) ?? 0) + 1);
  let best: StoredDtype | undefined;
  for (const [dtype, n] of counts) if (!best || n > counts.get(best)!) best = dtype;
  return best;
}
