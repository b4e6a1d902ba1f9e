/**
 * Plain typed-array loops for gradient kernels that some tfjs backends lack or
 * implement with per-element TensorBuffer access. All layouts are NHWC.
 */

/** What a convolution and a pooling window grid share: sizes, strides, dilations and padding. */
interface WindowGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padInfo: { top: number; left: number };
}

/** Geometry of one 2-D convolution, as computed by backend_util.computeConv2DInfo. */
export interface ConvGeometry extends WindowGeometry {
  outChannels: number;
  filterHeight: number;
  filterWidth: number;
}

/**
 * Visits every (output pixel, filter tap) pair whose input pixel lies inside the image, with the
 * element offsets of that output pixel in dy (pixel · outChannels), of the input pixel in x
 * (pixel · inChannels), and the tap's index r·kw + s. The three loops below differ only in what
 * they do per pair.
 */
function forEachTap(g: ConvGeometry, visit: (dyOff: number, xOff: number, tap: number) => void): void {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, outChannels: co,
    filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  for (let b = 0; b < n; b++) {
    for (let yr = 0; yr < ho; yr++) {
      for (let yc = 0; yc < wo; yc++) {
        const dyOff = ((b * ho + yr) * wo + yc) * co;
        for (let r = 0; r < kh; r++) {
          const xr = yr * sh + r * dh - top;
          if (xr < 0 || xr >= h) continue;
          for (let s = 0; s < kw; s++) {
            const xc = yc * sw + s * dw - left;
            if (xc < 0 || xc >= w) continue;
            visit(dyOff, ((b * h + xr) * w + xc) * c, r * kw + s);
          }
        }
      }
    }
  }
}

/** dW[kh,kw,Ci,Co] of a regular convolution from x[N,H,W,Ci] and dy[N,Ho,Wo,Co]. */
export function convFilterGradient(x: ArrayLike<number>, dy: ArrayLike<number>, g: ConvGeometry): Float32Array {
  const { inChannels: ci, outChannels: co } = g;
  const out = new Float32Array(g.filterHeight * g.filterWidth * ci * co);
  forEachTap(g, (dyOff, xOff, tap) => {
    const wOff = tap * ci * co;
    for (let c = 0; c < ci; c++) {
      const xv = x[xOff + c];
      if (xv === 0) continue; // post-ReLU activations are often zero
      const o = wOff + c * co;
      for (let d = 0; d < co; d++) out[o + d] += xv * dy[dyOff + d];
    }
  });
  return out;
}

/** dW[kh,kw,C,M] of a depthwise convolution (channel multiplier M) from x[N,H,W,C] and dy[N,Ho,Wo,C*M]. */
export function depthwiseFilterGradient(x: ArrayLike<number>, dy: ArrayLike<number>, g: ConvGeometry): Float32Array {
  const { inChannels: c, outChannels: co } = g;
  const m = co / c;
  const out = new Float32Array(g.filterHeight * g.filterWidth * co);
  forEachTap(g, (dyOff, xOff, tap) => {
    const wOff = tap * co;
    for (let ch = 0; ch < c; ch++) {
      const xv = x[xOff + ch], base = ch * m;
      for (let q = 0; q < m; q++) out[wOff + base + q] += xv * dy[dyOff + base + q];
    }
  });
  return out;
}

/** dX[N,H,W,C] of a depthwise convolution from dy[N,Ho,Wo,C*M] and the filter [kh,kw,C,M]. */
export function depthwiseInputGradient(dy: ArrayLike<number>, filter: ArrayLike<number>, g: ConvGeometry): Float32Array {
  const { inChannels: c, outChannels: co } = g;
  const m = co / c;
  const out = new Float32Array(g.batchSize * g.inHeight * g.inWidth * c);
  forEachTap(g, (dyOff, xOff, tap) => {
    const wOff = tap * co;
    for (let ch = 0; ch < c; ch++) {
      const base = ch * m;
      let acc = 0;
      for (let q = 0; q < m; q++) acc += filter[wOff + base + q] * dy[dyOff + base + q];
      out[xOff + ch] += acc;
    }
  });
  return out;
}

/** Sums rows of `x` (viewed as [ids.length, inner]) into `numSegments` buckets; ids outside the range are dropped. */
export function unsortedSegmentSum(x: ArrayLike<number>, ids: ArrayLike<number>, numSegments: number, inner: number,
  out: Float32Array | Int32Array): void {
  for (let i = 0; i < ids.length; i++) {
    const seg = ids[i];
    if (seg < 0 || seg >= numSegments) continue;
    const src = i * inner, dst = seg * inner;
    for (let k = 0; k < inner; k++) out[dst + k] += x[src + k];
  }
}

/** Geometry of one 2-D pooling window grid (backend_util.computePool2DInfo). */
export interface PoolGeometry extends WindowGeometry {
  effectiveFilterHeight: number;
  effectiveFilterWidth: number;
}

/**
 * dX of max pooling: each window's dy goes to the window's first maximum (row-major), as
 * TensorFlow and the tfjs cpu backend do.
 */
export function maxPoolInputGradient(x: ArrayLike<number>, dy: ArrayLike<number>, g: PoolGeometry): Float32Array {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: ho, outWidth: wo, strideHeight: sh, strideWidth: sw,
    dilationHeight: dh, dilationWidth: dw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  const out = new Float32Array(n * h * w * c);
  for (let b = 0; b < n; b++) {
    for (let yr = 0; yr < ho; yr++) {
      for (let yc = 0; yc < wo; yc++) {
        const dyOff = ((b * ho + yr) * wo + yc) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity, at = -1;
          for (let r = 0; r < fh; r += dh) {
            const xr = yr * sh + r - top;
            if (xr < 0 || xr >= h) continue;
            for (let s = 0; s < fw; s += dw) {
              const xc = yc * sw + s - left;
              if (xc < 0 || xc >= w) continue;
              const index = ((b * h + xr) * w + xc) * c + ch;
              if (x[index] > best) { best = x[index]; at = index; }
            }
          }
          if (at >= 0) out[at] += dy[dyOff + ch];
        }
      }
    }
  }
  return out;
}
