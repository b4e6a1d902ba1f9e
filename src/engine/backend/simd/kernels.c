// PruneLens training kernels: WebAssembly SIMD, run by several threads over one shared memory.
// Every job takes (args, thread, threads) and does its share; args is an int32 block in linear
// memory, one of the structs of kernel-args.h, which the build generates from the table the
// TypeScript side writes them with (simd/kernel-args.ts). There is no static data. Local arrays live on the shadow
// stack: the calling thread's is the module's own, and each worker thread's instance is given a
// stack of its own (simd/pool.ts). The in-place build (on the wasm backend's heap) has no such
// stack, so what it runs (batch norm, depthwise, relu_backward, clip_backward, sgd_momentum) uses no local arrays.
// Tensors are NHWC float32; filters are [kh, kw, ci, co], so a filter is a [K, co] matrix with
// K = kh·kw·ci in the same order as an im2col row.
#include <stdint.h>
#include <wasm_simd128.h>
#include "kernel-args.h"

typedef float f32;
typedef int32_t i32;

// a·b + c. The build compiles this file twice: plain SIMD (mul then add, two roundings; valid on every
// SIMD runtime) and with -mrelaxed-simd, where it is f32x4.relaxed_madd, fused (one rounding) where the
// CPU has FMA; the engine loads the relaxed build where the runtime validates it (simd/pool.ts).
#ifdef __wasm_relaxed_simd__
#if !__has_builtin(__builtin_wasm_relaxed_madd_f32x4)
#error "the relaxed-SIMD build needs clang 16+ (the final relaxed-SIMD opcodes)"
#endif
// wasm_f32x4_relaxed_madd of clang 17+'s wasm_simd128.h; clang 16 has only the builtin.
static inline v128_t fused_madd(v128_t a, v128_t b, v128_t c) {
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((__f32x4)a, (__f32x4)b, (__f32x4)c);
}
#define MADD(a, b, c) fused_madd((a), (b), (c))
#else
#define MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#endif

#define EXPORT(name) __attribute__((export_name(#name)))

static inline i32 min_i(i32 a, i32 b) { return a < b ? a : b; }
static inline i32 max_i(i32 a, i32 b) { return a > b ? a : b; }

// Stores the first n (< 4) lanes of v at p.
static inline void store_lanes(f32 *p, v128_t v, i32 n, i32 accumulate) {
  if (n > 0) p[0] = wasm_f32x4_extract_lane(v, 0) + (accumulate ? p[0] : 0.f);
  if (n > 1) p[1] = wasm_f32x4_extract_lane(v, 1) + (accumulate ? p[1] : 0.f);
  if (n > 2) p[2] = wasm_f32x4_extract_lane(v, 2) + (accumulate ? p[2] : 0.f);
}

// Stores the first n (≤ 8) lanes of lo:hi at p, added to what is there when accumulating.
static inline void store_row(f32 *p, v128_t lo, v128_t hi, i32 n, i32 accumulate) {
  if (n >= 4) {
    if (accumulate) lo = wasm_f32x4_add(lo, wasm_v128_load(p));
    wasm_v128_store(p, lo);
    if (n == 8) {
      if (accumulate) hi = wasm_f32x4_add(hi, wasm_v128_load(p + 4));
      wasm_v128_store(p + 4, hi);
    } else {
      store_lanes(p + 4, hi, n - 4, accumulate);
    }
  } else {
    store_lanes(p, lo, n, accumulate);
  }
}

// The first n (< 4) floats at p, zeros after.
static inline v128_t load_partial4(const f32 *p, i32 n) {
  return wasm_f32x4_make(p[0], n > 1 ? p[1] : 0.f, n > 2 ? p[2] : 0.f, 0.f);
}

// B[k×n] as panels of 8 columns: panel j holds rows 0..k-1 of columns 8j..8j+7 contiguously
// ([ceil(n/8)][k][8]), zero past column n, so the GEMM's k loop never checks lanes.
// Element (p, j) of B is src[p·sp + j·sj], which covers B, Bᵀ and any strided view.
static void pack_panels(const f32 *src, i32 k, i32 n, i32 sp, i32 sj, f32 *dst, i32 panel_begin, i32 panel_end) {
  for (i32 panel = panel_begin; panel < panel_end; panel++) {
    f32 *out = dst + panel * k * 8;
    const i32 j0 = panel * 8, cols = min_i(8, n - j0);
    for (i32 p = 0; p < k; p++, out += 8) {
      const f32 *row = src + p * sp + j0 * sj;
      if (cols == 8 && sj == 1) {
        wasm_v128_store(out, wasm_v128_load(row));
        wasm_v128_store(out + 4, wasm_v128_load(row + 4));
        continue;
      }
      for (i32 q = 0; q < 8; q++) out[q] = q < cols ? row[q * sj] : 0.f;
    }
  }
}

// C[m×n] (+)= A[m×k]·B[k×n], B packed by pack_panels; element (i, p) of A is a[i·rs + p·ks],
// so A may be row-major (rs = lda, ks = 1) or transposed (rs = 1, ks = lda).
// Register tile 4×8: V8 gives wasm 15 vector registers on x64, and 8 accumulators, two B vectors,
// the broadcast and a product fit without spills (a 6×8 tile spilled and ran at half the speed).
static void gemm(i32 m, i32 n, i32 k, const f32 *a, i32 rs, i32 ks, const f32 *panels, f32 *c, i32 ldc, i32 accumulate) {
  for (i32 j = 0; j < n; j += 8) {
    const i32 nr = min_i(8, n - j);
    const f32 *panel = panels + j * k;
    for (i32 i = 0; i < m; i += 4) {
      const i32 mr = min_i(4, m - i);
      // Rows past m reread the last row; their results are not stored.
      const f32 *a0 = a + i * rs, *a1 = a + (i + min_i(1, mr - 1)) * rs;
      const f32 *a2 = a + (i + min_i(2, mr - 1)) * rs, *a3 = a + (i + min_i(3, mr - 1)) * rs;
      v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      const f32 *bp = panel;
      for (i32 p = 0, q = 0; p < k; p++, q += ks, bp += 8) {
        const v128_t b0 = wasm_v128_load(bp), b1 = wasm_v128_load(bp + 4);
        v128_t av = wasm_v128_load32_splat(a0 + q); c00 = MADD(av, b0, c00); c01 = MADD(av, b1, c01);
        av = wasm_v128_load32_splat(a1 + q); c10 = MADD(av, b0, c10); c11 = MADD(av, b1, c11);
        av = wasm_v128_load32_splat(a2 + q); c20 = MADD(av, b0, c20); c21 = MADD(av, b1, c21);
        av = wasm_v128_load32_splat(a3 + q); c30 = MADD(av, b0, c30); c31 = MADD(av, b1, c31);
      }
      f32 *cp = c + i * ldc + j;
      store_row(cp, c00, c01, nr, accumulate);
      if (mr > 1) store_row(cp + ldc, c10, c11, nr, accumulate);
      if (mr > 2) store_row(cp + 2 * ldc, c20, c21, nr, accumulate);
      if (mr > 3) store_row(cp + 3 * ldc, c30, c31, nr, accumulate);
    }
  }
}

static inline void copy_floats(f32 *dst, const f32 *src, i32 n) {
  i32 i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; i++) dst[i] = src[i];
}

static inline void zero_floats(f32 *dst, i32 n) {
  i32 i = 0;
  const v128_t z = wasm_f32x4_splat(0);
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, z);
  for (; i < n; i++) dst[i] = 0;
}

static inline void add_floats(f32 *dst, const f32 *src, i32 n) {
  i32 i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + i, wasm_f32x4_add(wasm_v128_load(dst + i), wasm_v128_load(src + i)));
  for (; i < n; i++) dst[i] += src[i];
}

static inline int is_pointwise(const Conv *c) {
  return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pad_top == 0 && c->pad_left == 0;
}

// Runs the statement after it for every filter tap (ky, kx) of output pixel (oy, ox) whose input pixel
// (iy, ix) lies inside the image, row by row, as the two nested loops it stands for (`g` is a Conv or a
// Depthwise: both name their geometry alike). A row outside the image ends the inner loop at once.
#define FOR_EACH_INSIDE_TAP(g, oy, ox, ky, kx, iy, ix)                                                   \
  for (i32 ky = 0; ky < (g)->kh; ky++)                                                                   \
    for (i32 iy = (oy) * (g)->sh - (g)->pad_top + ky * (g)->dh, kx = 0; iy >= 0 && iy < (g)->h && kx < (g)->kw; kx++) \
      for (i32 ix = (ox) * (g)->sw - (g)->pad_left + kx * (g)->dw, inside_ = ix >= 0 && ix < (g)->w; inside_; inside_ = 0)

// im2col rows for output pixels [p0, p0+rows) into dst ([rows × K]).
static void pack_patches(const Conv *c, const f32 *x, i32 p0, i32 rows, f32 *dst) {
  const i32 ci = c->ci, k = c->kh * c->kw * ci, hw = c->ho * c->wo;
  for (i32 r = 0; r < rows; r++) {
    const i32 p = p0 + r, b = p / hw, rem = p - b * hw, oy = rem / c->wo, ox = rem - oy * c->wo;
    f32 *row = dst + r * k;
    for (i32 ky = 0; ky < c->kh; ky++) {
      const i32 iy = oy * c->sh - c->pad_top + ky * c->dh;
      for (i32 kx = 0; kx < c->kw; kx++) {
        const i32 ix = ox * c->sw - c->pad_left + kx * c->dw;
        f32 *seg = row + (ky * c->kw + kx) * ci;
        if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) zero_floats(seg, ci);
        else copy_floats(seg, x + ((b * c->h + iy) * c->w + ix) * ci, ci);
      }
    }
  }
}

// Adds dcol rows (pixels [p0, p0+rows), [rows × K]) back into dx: the adjoint of pack_patches.
static void unpack_patches_add(const Conv *c, f32 *dx, i32 p0, i32 rows, const f32 *dcol) {
  const i32 ci = c->ci, k = c->kh * c->kw * ci, hw = c->ho * c->wo;
  for (i32 r = 0; r < rows; r++) {
    const i32 p = p0 + r, b = p / hw, rem = p - b * hw, oy = rem / c->wo, ox = rem - oy * c->wo;
    const f32 *row = dcol + r * k;
    FOR_EACH_INSIDE_TAP(c, oy, ox, ky, kx, iy, ix)
      add_floats(dx + ((b * c->h + iy) * c->w + ix) * ci, row + (ky * c->kw + kx) * ci, ci);
  }
}

// The next `step` items of [0, total) for whichever thread asks first: sets *begin and returns how many
// (0 when none are left). Handing work out this way keeps every core busy when one runs slower than the
// others (a busy neighbour on a shared machine), where equal shares would leave the rest waiting for it.
// Only for jobs whose threads write disjoint outputs: a reduction (dW, batch-norm sums) takes equal
// shares with split(), because which thread sums which items sets the float rounding, and training
// with the same seed must give the same weights on every run.
static inline i32 take(i32 *counter, i32 total, i32 step, i32 *begin) {
  *begin = __atomic_fetch_add(counter, step, __ATOMIC_RELAXED);
  return *begin >= total ? 0 : min_i(step, total - *begin);
}

static inline void split(i32 total, i32 thread, i32 threads, i32 *begin, i32 *end) {
  const i32 per = total / threads, extra = total % threads;
  *begin = thread * per + min_i(thread, extra);
  *end = *begin + per + (thread < extra ? 1 : 0);
}

static void bias_activation(f32 *y, i32 rows, i32 co, const f32 *bias, i32 activation) {
  if (!bias && activation == 0) return;
  const v128_t zero = wasm_f32x4_splat(0), six = wasm_f32x4_splat(6);
  for (i32 r = 0; r < rows; r++) {
    f32 *row = y + r * co;
    i32 j = 0;
    for (; j + 4 <= co; j += 4) {
      v128_t v = wasm_v128_load(row + j);
      if (bias) v = wasm_f32x4_add(v, wasm_v128_load(bias + j));
      if (activation >= 1) v = wasm_f32x4_pmax(v, zero);
      if (activation == 2) v = wasm_f32x4_pmin(v, six);
      wasm_v128_store(row + j, v);
    }
    for (; j < co; j++) {
      f32 v = row[j] + (bias ? bias[j] : 0.f);
      if (activation >= 1 && v < 0) v = 0;
      if (activation == 2 && v > 6) v = 6;
      row[j] = v;
    }
  }
}

#define PTR(off) ((f32 *)(uintptr_t)(off))

// y = conv(x, filter) (+ bias, activation), the filter packed in c->aux. Threads take tiles of output pixels.
EXPORT(conv2d_forward) void conv2d_forward(Conv *c, i32 thread, i32 threads) {
  const i32 k = c->kh * c->kw * c->ci, pixels = c->n * c->ho * c->wo;
  const f32 *x = PTR(c->x), *panels = PTR(c->aux), *bias = c->bias ? PTR(c->bias) : 0;
  f32 *y = PTR(c->y), *scratch = PTR(c->scratch + thread * c->scratch_bytes);
  const int pointwise = is_pointwise(c);
  (void)threads;
  for (i32 p, rows; (rows = take(&c->next, pixels, c->tile, &p)) > 0;) {
    if (!pointwise) pack_patches(c, x, p, rows, scratch);
    gemm(rows, c->co, k, pointwise ? x + p * c->ci : scratch, k, 1, panels, y + p * c->co, c->co, 0);
    bias_activation(y + p * c->co, rows, c->co, bias, c->activation);
  }
}

// Packs a batch of matrices for the GEMM (see pack_panels); threads split the (matrix, panel) pairs.
EXPORT(pack_matrix_panels) void pack_matrix_panels(const PackPanelsArgs *args, i32 thread, i32 threads) {
  const i32 k = args->k, n = args->n, sp = args->sp, sj = args->sj, batch = args->batch, panels = (n + 7) / 8;
  i32 begin, end;
  split(batch * panels, thread, threads, &begin, &end);
  for (i32 t = begin; t < end; t++) {
    const i32 b = t / panels, panel = t - b * panels;
    pack_panels(PTR(args->src) + b * args->src_stride, k, n, sp, sj, PTR(args->dst) + b * args->dst_stride, panel, panel + 1);
  }
}

// dx (in c->y) from dy (c->x) and the filter packed transposed (c->aux: Wᵀ, co × K).
// Threads take whole images, so the scatter-adds of different threads never meet.
EXPORT(conv2d_backprop_input) void conv2d_backprop_input(Conv *c, i32 thread, i32 threads) {
  const i32 k = c->kh * c->kw * c->ci, hw = c->ho * c->wo;
  const f32 *dy = PTR(c->x), *panels = PTR(c->aux);
  f32 *dx = PTR(c->y), *scratch = PTR(c->scratch + thread * c->scratch_bytes);
  const int pointwise = is_pointwise(c);
  (void)threads;
  for (i32 b; take(&c->next, c->n, 1, &b) > 0;) {
    if (!pointwise) zero_floats(dx + b * c->h * c->w * c->ci, c->h * c->w * c->ci);
    for (i32 p = b * hw; p < (b + 1) * hw; p += c->tile) {
      const i32 rows = min_i(c->tile, (b + 1) * hw - p);
      if (pointwise) {
        gemm(rows, c->ci, c->co, dy + p * c->co, c->co, 1, panels, dx + p * c->ci, c->ci, 0);
      } else {
        gemm(rows, k, c->co, dy + p * c->co, c->co, 1, panels, scratch, k, 0);
        unpack_patches_add(c, dx, p, rows, scratch);
      }
    }
  }
}

// Per-thread partial dW ([K × co], at aux + thread·K·co; equal shares, see take()) from x (c->x) and dy (c->y):
// dW += patchesᵀ · dy, reading the patches transposed in place; the scratch holds the patches,
// then the tile of dy packed for the GEMM.
EXPORT(conv2d_backprop_filter) void conv2d_backprop_filter(const Conv *c, i32 thread, i32 threads) {
  const i32 k = c->kh * c->kw * c->ci, pixels = c->n * c->ho * c->wo, co = c->co;
  const f32 *x = PTR(c->x), *dy = PTR(c->y);
  f32 *partial = PTR(c->aux) + thread * k * co;
  f32 *patches = PTR(c->scratch + thread * c->scratch_bytes), *dy_panels = patches + c->tile * k;
  const int pointwise = is_pointwise(c);
  zero_floats(partial, k * co);
  i32 begin, end;
  split(pixels, thread, threads, &begin, &end);
  for (i32 p = begin; p < end; p += c->tile) {
    const i32 rows = min_i(c->tile, end - p);
    if (!pointwise) pack_patches(c, x, p, rows, patches);
    pack_panels(dy + p * co, rows, co, co, 1, dy_panels, 0, (co + 7) / 8);
    gemm(k, co, rows, pointwise ? x + p * c->ci : patches, 1, k, dy_panels, partial, co, 1);
  }
}

// dW = Σ_threads partials, elementwise; threads split the elements.
EXPORT(reduce_filter_partials) void reduce_filter_partials(const ReduceFilterArgs *args, i32 thread, i32 threads) {
  const i32 floats = args->floats, count = args->count;
  const f32 *partials = PTR(args->partials);
  f32 *dw = PTR(args->dw);
  i32 begin, end;
  split((floats + 3) / 4, thread, threads, &begin, &end);
  begin *= 4;
  end = min_i(end * 4, floats);
  copy_floats(dw + begin, partials + begin, end - begin);
  for (i32 t = 1; t < count; t++) add_floats(dw + begin, partials + t * floats + begin, end - begin);
}

// Batched C[b] = A[b]·B[b] (+ bias, activation), B packed by pack_matrix_panels.
EXPORT(matmul) void matmul(MatmulArgs *args, i32 thread, i32 threads) {
  const i32 batch = args->batch, m = args->m, n = args->n, k = args->k;
  const f32 *a = PTR(args->a), *panels = PTR(args->panels), *bias = args->bias ? PTR(args->bias) : 0;
  f32 *c = PTR(args->c);
  const i32 activation = args->activation, a_stride = args->a_stride, panel_stride = args->panel_stride, rs = args->rs, ks = args->ks;
  // Tasks are (matrix, chunk of rows, panel of 8 columns), panels fastest, so successive tasks reread
  // one chunk of A (≤ 256 KiB, in L2) against panels of B that fit in L1.
  const i32 chunk = min_i(m, max_i(4, (65536 / max_i(k, 1)) & ~3));
  const i32 chunks = (m + chunk - 1) / chunk, panel_count = (n + 7) / 8;
  (void)thread; (void)threads;
  for (i32 t; take(&args->next, batch * chunks * panel_count, 1, &t) > 0;) {
    const i32 bi = t / (chunks * panel_count), rest = t - bi * chunks * panel_count;
    const i32 r0 = rest / panel_count * chunk, j = (rest % panel_count) * 8, rows = min_i(chunk, m - r0), cols = min_i(8, n - j);
    f32 *cp = c + (bi * m + r0) * n + j;
    gemm(rows, cols, k, a + bi * a_stride + r0 * rs, rs, ks, panels + bi * panel_stride + j * k, cp, n, 0);
    for (i32 r = 0; r < rows; r++) bias_activation(cp + r * n, 1, cols, bias ? bias + j : 0, activation);
  }
}

// ---- Winograd F(4×4, 3×3) for 3×3 stride-1 convolutions (Lavin & Gray, 2016). ----
// Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A: a 6×6 input tile gives a 4×4 output tile with 36 products per
// channel pair instead of 144. The 36 products are 36 GEMMs [tiles × ci]·[ci × co] on the same
// packed-panel kernel as everything else; channels are padded to whole vectors of 4 in that domain.

// Bᵀ applied to six values (in place, through the named temporaries).
#define BT6(d0, d1, d2, d3, d4, d5, r0, r1, r2, r3, r4, r5) do {                                       \
    const v128_t four = wasm_f32x4_splat(4.f), five = wasm_f32x4_splat(5.f), two = wasm_f32x4_splat(2.f);  \
    const v128_t t14 = wasm_f32x4_add(d1, d2), t23 = wasm_f32x4_sub(d4, d2);                                 \
    r0 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d0), wasm_f32x4_mul(five, d2)), d4);             \
    r1 = wasm_f32x4_sub(wasm_f32x4_add(d3, d4), wasm_f32x4_mul(four, t14));                                  \
    r2 = wasm_f32x4_add(wasm_f32x4_mul(four, wasm_f32x4_sub(d1, d2)), wasm_f32x4_sub(d4, d3));               \
    r3 = wasm_f32x4_add(wasm_f32x4_mul(two, wasm_f32x4_sub(d3, d1)), t23);                                   \
    r4 = wasm_f32x4_add(wasm_f32x4_mul(two, wasm_f32x4_sub(d1, d3)), t23);                                   \
    r5 = wasm_f32x4_add(wasm_f32x4_sub(wasm_f32x4_mul(four, d1), wasm_f32x4_mul(five, d3)), d5);             \
  } while (0)

// Aᵀ applied to six values.
#define AT6(m0, m1, m2, m3, m4, m5, o0, o1, o2, o3) do {                                                 \
    const v128_t s12 = wasm_f32x4_add(m1, m2), d12 = wasm_f32x4_sub(m1, m2);                                 \
    const v128_t s34 = wasm_f32x4_add(m3, m4), d34 = wasm_f32x4_sub(m3, m4);                                 \
    o0 = wasm_f32x4_add(wasm_f32x4_add(m0, s12), s34);                                                       \
    o1 = wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(2.f), d34));                                    \
    o2 = wasm_f32x4_add(s12, wasm_f32x4_mul(wasm_f32x4_splat(4.f), s34));                                    \
    o3 = wasm_f32x4_add(wasm_f32x4_add(d12, wasm_f32x4_mul(wasm_f32x4_splat(8.f), d34)), m5);                \
  } while (0)

// G applied to three values.
#define G3(g0, g1, g2, u0, u1, u2, u3, u4, u5) do {                                                      \
    const v128_t s02 = wasm_f32x4_add(g0, g2);                                                               \
    u0 = wasm_f32x4_mul(wasm_f32x4_splat(0.25f), g0);                                                        \
    u1 = wasm_f32x4_mul(wasm_f32x4_splat(-1.f / 6.f), wasm_f32x4_add(s02, g1));                              \
    u2 = wasm_f32x4_mul(wasm_f32x4_splat(-1.f / 6.f), wasm_f32x4_sub(s02, g1));                              \
    const v128_t e = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(1.f / 24.f), g0), wasm_f32x4_mul(wasm_f32x4_splat(1.f / 6.f), g2)); \
    const v128_t f = wasm_f32x4_mul(wasm_f32x4_splat(1.f / 12.f), g1);                                       \
    u3 = wasm_f32x4_add(e, f); u4 = wasm_f32x4_sub(e, f); u5 = g2;                                           \
  } while (0)

static inline i32 round4(i32 v) { return (v + 3) & ~3; }

// Floats between the 36 matrices of a transform (filter panels, V, M, dy panels) beyond their size:
// the transforms write or read all 36 at once, and a power-of-two distance put them all in the same
// few L1 sets (the 64-channel filter transform ran 16 times slower per float than the 16-channel one).
#define WINOGRAD_PAD 16
static inline i32 filter_panel_stride(i32 ci4, i32 co4) { return ci4 * ((co4 + 7) & ~7) + WINOGRAD_PAD; }

// Four channels of x at (b, iy, ix), zero outside the image or past the last channel.
static inline v128_t load_channels(const Conv *c, const f32 *x, i32 b, i32 iy, i32 ix, i32 ch) {
  if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) return wasm_f32x4_splat(0);
  const f32 *p = x + ((b * c->h + iy) * c->w + ix) * c->ci + ch;
  const i32 n = c->ci - ch;
  return n >= 4 ? wasm_v128_load(p) : load_partial4(p, n);
}

// Bᵀ d B for the 6×6 tile of four channels of x whose corner is (iy0, ix0); position pos goes to dst + pos·stride.
// Columns first, straight from x into 36 temporaries, then rows straight into dst: V8 keeps about 15
// vectors in registers, so every pass through a temporary array is a store and a load.
// Tiles inside the image with whole vectors of channels read x without bounds checks.
static void transform_input_tile(const Conv *c, const f32 *x, i32 b, i32 iy0, i32 ix0, i32 ch, f32 *dst, i32 stride) {
  v128_t e[36];
  const int inside = iy0 >= 0 && ix0 >= 0 && iy0 + 6 <= c->h && ix0 + 6 <= c->w && ch + 4 <= c->ci;
  const i32 row = c->w * c->ci;
  for (i32 j = 0; j < 6; j++) {
    v128_t d0, d1, d2, d3, d4, d5;
    if (inside) {
      const f32 *p = x + ((b * c->h + iy0) * c->w + ix0 + j) * c->ci + ch;
      d0 = wasm_v128_load(p); d1 = wasm_v128_load(p + row); d2 = wasm_v128_load(p + 2 * row);
      d3 = wasm_v128_load(p + 3 * row); d4 = wasm_v128_load(p + 4 * row); d5 = wasm_v128_load(p + 5 * row);
    } else {
      d0 = load_channels(c, x, b, iy0, ix0 + j, ch); d1 = load_channels(c, x, b, iy0 + 1, ix0 + j, ch);
      d2 = load_channels(c, x, b, iy0 + 2, ix0 + j, ch); d3 = load_channels(c, x, b, iy0 + 3, ix0 + j, ch);
      d4 = load_channels(c, x, b, iy0 + 4, ix0 + j, ch); d5 = load_channels(c, x, b, iy0 + 5, ix0 + j, ch);
    }
    BT6(d0, d1, d2, d3, d4, d5, e[j], e[6 + j], e[12 + j], e[18 + j], e[24 + j], e[30 + j]);
  }
  for (i32 i = 0; i < 6; i++) {
    v128_t r0, r1, r2, r3, r4, r5;
    BT6(e[i * 6], e[i * 6 + 1], e[i * 6 + 2], e[i * 6 + 3], e[i * 6 + 4], e[i * 6 + 5], r0, r1, r2, r3, r4, r5);
    f32 *out = dst + i * 6 * stride;
    wasm_v128_store(out, r0); wasm_v128_store(out + stride, r1); wasm_v128_store(out + 2 * stride, r2);
    wasm_v128_store(out + 3 * stride, r3); wasm_v128_store(out + 4 * stride, r4); wasm_v128_store(out + 5 * stride, r5);
  }
}

// U[pos] = (G g Gᵀ)[pos] for every (input channel c, output channel o), written straight into the
// GEMM's panels: U[pos] is a [ci4 × co4] matrix (rows past ci zero) packed as pack_panels would.
// turned = 0: the filter is [3,3,ci,co]; turned = 1: it is the [3,3,co,ci] filter of the convolution
// whose dX this is, used turned 180° with its channels swapped (g[tap] = W[8 − tap][o][c]).
// Threads split the input channels.
EXPORT(winograd_filter) void winograd_filter(const WinogradFilterArgs *args, i32 thread, i32 threads) {
  const f32 *w = PTR(args->filter);
  const i32 ci = args->ci, co = args->co, turned = args->turned, ci4 = round4(ci), co4 = round4(co), cols = (co4 + 7) & ~7;
  const i32 ps = filter_panel_stride(ci4, co4);
  f32 *panels = PTR(args->panels);
  i32 begin, end;
  split(ci4, thread, threads, &begin, &end);
  for (i32 ch = begin; ch < end; ch++)
    for (i32 o = 0; o < cols; o += 4) {
      f32 *dst = panels + (o / 8) * ci4 * 8 + ch * 8 + (o & 7);
      const i32 n = ch < ci && o < co ? min_i(4, co - o) : 0;
      if (n == 0) {
        for (i32 pos = 0; pos < 36; pos++) wasm_v128_store(dst + pos * ps, wasm_f32x4_splat(0));
        continue;
      }
      v128_t g[9];
      for (i32 tap = 0; tap < 9; tap++) {
        if (turned) {
          const f32 *p = w + ((8 - tap) * co + o) * ci + ch;
          g[tap] = wasm_f32x4_make(p[0], n > 1 ? p[ci] : 0.f, n > 2 ? p[2 * ci] : 0.f, n > 3 ? p[3 * ci] : 0.f);
        } else {
          const f32 *p = w + (tap * ci + ch) * co + o;
          g[tap] = n == 4 ? wasm_v128_load(p) : load_partial4(p, n);
        }
      }
      v128_t t[18];
      for (i32 col = 0; col < 3; col++) G3(g[col], g[3 + col], g[6 + col], t[col], t[3 + col], t[6 + col], t[9 + col], t[12 + col], t[15 + col]);
      for (i32 row = 0; row < 6; row++) {
        v128_t r0, r1, r2, r3, r4, r5;
        G3(t[row * 3], t[row * 3 + 1], t[row * 3 + 2], r0, r1, r2, r3, r4, r5);
        f32 *out = dst + row * 6 * ps;
        wasm_v128_store(out, r0); wasm_v128_store(out + ps, r1); wasm_v128_store(out + 2 * ps, r2);
        wasm_v128_store(out + 3 * ps, r3); wasm_v128_store(out + 4 * ps, r4); wasm_v128_store(out + 5 * ps, r5);
      }
    }
}

// y = conv(x, W) for a 3×3 kernel, stride and dilation 1, any padding, with bias and activation;
// c->aux holds the 36 filter matrices packed by winograd_filter (ci4 × panel-padded co4 floats apart).
// Threads take chunks of c->tile 4×4 output tiles and work on each in their scratch:
// V [36][tiles][ci4], then M [36][tiles][co4].
EXPORT(winograd_conv) void winograd_conv(Conv *c, i32 thread, i32 threads) {
  const i32 ci4 = round4(c->ci), co4 = round4(c->co), th = (c->ho + 3) / 4, tw = (c->wo + 3) / 4, per_image = th * tw;
  const i32 panel_stride = filter_panel_stride(ci4, co4), chunk = c->tile;
  const i32 vs = chunk * ci4 + WINOGRAD_PAD, ms = chunk * co4 + WINOGRAD_PAD;
  const f32 *x = PTR(c->x), *panels = PTR(c->aux), *bias = c->bias ? PTR(c->bias) : 0;
  f32 *y = PTR(c->y), *v = PTR(c->scratch + thread * c->scratch_bytes), *m = v + 36 * vs;
  const v128_t zero = wasm_f32x4_splat(0), six = wasm_f32x4_splat(6);
  (void)threads;
  for (i32 t0, tiles; (tiles = take(&c->next, c->n * per_image, chunk, &t0)) > 0;) {
    for (i32 t = 0; t < tiles; t++) {
      const i32 b = (t0 + t) / per_image, rest = (t0 + t) - b * per_image, ty = rest / tw, tx = rest - ty * tw;
      const i32 iy0 = ty * 4 - c->pad_top, ix0 = tx * 4 - c->pad_left;
      for (i32 ch = 0; ch < ci4; ch += 4) transform_input_tile(c, x, b, iy0, ix0, ch, v + t * ci4 + ch, vs);
    }
    for (i32 pos = 0; pos < 36; pos++)
      gemm(tiles, co4, ci4, v + pos * vs, ci4, 1, panels + pos * panel_stride, m + pos * ms, co4, 0);
    for (i32 t = 0; t < tiles; t++) {
      const i32 b = (t0 + t) / per_image, rest = (t0 + t) - b * per_image, ty = rest / tw, tx = rest - ty * tw;
      const i32 rows = min_i(4, c->ho - ty * 4), cols = min_i(4, c->wo - tx * 4);
      for (i32 o = 0; o < co4; o += 4) {
        // Columns first, from M into 24 temporaries, then each output row straight to y.
        v128_t r[24];
        const f32 *q = m + t * co4 + o;
        for (i32 j = 0; j < 6; j++)
          AT6(wasm_v128_load(q + j * ms), wasm_v128_load(q + (6 + j) * ms), wasm_v128_load(q + (12 + j) * ms),
              wasm_v128_load(q + (18 + j) * ms), wasm_v128_load(q + (24 + j) * ms), wasm_v128_load(q + (30 + j) * ms),
              r[j], r[6 + j], r[12 + j], r[18 + j]);
        const v128_t bv = bias ? (c->co - o >= 4 ? wasm_v128_load(bias + o) : load_partial4(bias + o, c->co - o)) : zero;
        const int whole = c->co - o >= 4;
        for (i32 i = 0; i < rows; i++) {
          v128_t out[4];
          AT6(r[i * 6], r[i * 6 + 1], r[i * 6 + 2], r[i * 6 + 3], r[i * 6 + 4], r[i * 6 + 5], out[0], out[1], out[2], out[3]);
          f32 *dst = y + ((b * c->ho + ty * 4 + i) * c->wo + tx * 4) * c->co + o;
          for (i32 j = 0; j < cols; j++, dst += c->co) {
            v128_t val = wasm_f32x4_add(out[j], bv);
            if (c->activation >= 1) val = wasm_f32x4_pmax(val, zero);
            if (c->activation == 2) val = wasm_f32x4_pmin(val, six);
            if (whole) wasm_v128_store(dst, val); else store_lanes(dst, val, c->co - o, 0);
          }
        }
      }
    }
  }
}

// A applied to four values (the adjoint of Aᵀ): six values.
#define A4(o0, o1, o2, o3, m0, m1, m2, m3, m4, m5) do {                                                  \
    const v128_t s02 = wasm_f32x4_add(o0, o2), s13 = wasm_f32x4_add(o1, o3);                                 \
    const v128_t q02 = wasm_f32x4_add(o0, wasm_f32x4_mul(wasm_f32x4_splat(4.f), o2));                        \
    const v128_t q13 = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(2.f), o1), wasm_f32x4_mul(wasm_f32x4_splat(8.f), o3)); \
    m0 = o0; m1 = wasm_f32x4_add(s02, s13); m2 = wasm_f32x4_sub(s02, s13);                                   \
    m3 = wasm_f32x4_add(q02, q13); m4 = wasm_f32x4_sub(q02, q13); m5 = o3;                                   \
  } while (0)

// Gᵀ applied to six values (the adjoint of G): three values.
#define GT6(u0, u1, u2, u3, u4, u5, g0, g1, g2) do {                                                     \
    const v128_t s12 = wasm_f32x4_add(u1, u2), s34 = wasm_f32x4_add(u3, u4);                                 \
    g0 = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(0.25f), u0),                                        \
                        wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(-1.f / 6.f), s12), wasm_f32x4_mul(wasm_f32x4_splat(1.f / 24.f), s34))); \
    g1 = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(1.f / 6.f), wasm_f32x4_sub(u2, u1)),                  \
                        wasm_f32x4_mul(wasm_f32x4_splat(1.f / 12.f), wasm_f32x4_sub(u3, u4)));               \
    g2 = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_splat(-1.f / 6.f), s12),                    \
                                       wasm_f32x4_mul(wasm_f32x4_splat(1.f / 6.f), s34)), u5);               \
  } while (0)

// dW of the same convolutions, by the transpose of the forward formula: dW = Gᵀ[Σ_tiles (Bᵀ x B) ⊙ (A dy Aᵀ)]G.
// The sum over tiles is 36 GEMMs [ci4 × tiles]·[tiles × co4] with the tiles as the long inner dimension.
// Each thread adds its equal share of the tiles (see take()) into its partial [36][ci4][co4] at
// aux + thread·36·(ci4·co4 + WINOGRAD_PAD); the input tile transform goes to V [36][tiles][ci4], and dy's straight into
// GEMM panels D [36][co4/8][tiles][8].
EXPORT(winograd_filter_grad) void winograd_filter_grad(const Conv *c, i32 thread, i32 threads) {
  const i32 ci4 = round4(c->ci), co4 = round4(c->co), cols = (co4 + 7) & ~7;
  const i32 th = (c->ho + 3) / 4, tw = (c->wo + 3) / 4, per_image = th * tw, chunk = c->tile;
  const f32 *x = PTR(c->x), *dy = PTR(c->y);
  const i32 partial_stride = ci4 * co4 + WINOGRAD_PAD;
  f32 *partial = PTR(c->aux) + thread * 36 * partial_stride;
  f32 *v = PTR(c->scratch + thread * c->scratch_bytes), *d = v + 36 * (chunk * ci4 + WINOGRAD_PAD);
  zero_floats(partial, 36 * partial_stride);
  i32 begin, end;
  split(c->n * per_image, thread, threads, &begin, &end);
  for (i32 t0 = begin; t0 < end; t0 += chunk) {
    const i32 tiles = min_i(chunk, end - t0), vs = tiles * ci4 + WINOGRAD_PAD, ps = cols * tiles + WINOGRAD_PAD;
    for (i32 t = 0; t < tiles; t++) {
      const i32 b = (t0 + t) / per_image, rest = (t0 + t) - b * per_image, ty = rest / tw, tx = rest - ty * tw;
      for (i32 ch = 0; ch < ci4; ch += 4)
        transform_input_tile(c, x, b, ty * 4 - c->pad_top, tx * 4 - c->pad_left, ch, v + t * ci4 + ch, vs);
      const i32 rows = min_i(4, c->ho - ty * 4), width = min_i(4, c->wo - tx * 4);
      for (i32 o = 0; o < cols; o += 4) {
        f32 *dst = d + (o / 8) * tiles * 8 + t * 8 + (o & 7);
        if (o >= co4) {
          for (i32 pos = 0; pos < 36; pos++) wasm_v128_store(dst + pos * ps, wasm_f32x4_splat(0));
          continue;
        }
        // A dy Aᵀ: columns first into 24 temporaries, then rows straight into the panels.
        v128_t r[24];
        const i32 n = c->co - o;
        for (i32 j = 0; j < 4; j++) {
          v128_t g0 = wasm_f32x4_splat(0), g1 = g0, g2 = g0, g3 = g0;
          if (j < width) {
            const f32 *p = dy + ((b * c->ho + ty * 4) * c->wo + tx * 4 + j) * c->co + o;
            const i32 row = c->wo * c->co;
#define DY(i) (i >= rows ? wasm_f32x4_splat(0) : n >= 4 ? wasm_v128_load(p + i * row) : load_partial4(p + i * row, n))
            g0 = DY(0); g1 = DY(1); g2 = DY(2); g3 = DY(3);
#undef DY
          }
          A4(g0, g1, g2, g3, r[j], r[4 + j], r[8 + j], r[12 + j], r[16 + j], r[20 + j]);
        }
        for (i32 i = 0; i < 6; i++) {
          v128_t q0, q1, q2, q3, q4, q5;
          A4(r[i * 4], r[i * 4 + 1], r[i * 4 + 2], r[i * 4 + 3], q0, q1, q2, q3, q4, q5);
          f32 *out = dst + i * 6 * ps;
          wasm_v128_store(out, q0); wasm_v128_store(out + ps, q1); wasm_v128_store(out + 2 * ps, q2);
          wasm_v128_store(out + 3 * ps, q3); wasm_v128_store(out + 4 * ps, q4); wasm_v128_store(out + 5 * ps, q5);
        }
      }
    }
    for (i32 pos = 0; pos < 36; pos++)
      gemm(ci4, co4, tiles, v + pos * vs, 1, ci4, d + pos * ps, partial + pos * partial_stride, co4, 1);
  }
}

// dW [3,3,ci,co] = Gᵀ (Σ_threads partials) G; threads split the input channels.
EXPORT(winograd_filter_grad_finish) void winograd_filter_grad_finish(const WinogradFinishArgs *args, i32 thread, i32 threads) {
  const f32 *partials = PTR(args->partials);
  const i32 count = args->count, ci = args->ci, co = args->co, ci4 = round4(ci), co4 = round4(co), partial_stride = ci4 * co4 + WINOGRAD_PAD, stride = 36 * partial_stride;
  f32 *dw = PTR(args->dw);
  i32 begin, end;
  split(ci, thread, threads, &begin, &end);
  for (i32 ch = begin; ch < end; ch++)
    for (i32 o = 0; o < co4; o += 4) {
      v128_t u[36], t[18], g[9];
      for (i32 pos = 0; pos < 36; pos++) {
        const f32 *p = partials + pos * partial_stride + ch * co4 + o;
        v128_t sum = wasm_v128_load(p);
        for (i32 k = 1; k < count; k++) sum = wasm_f32x4_add(sum, wasm_v128_load(p + k * stride));
        u[pos] = sum;
      }
      for (i32 j = 0; j < 6; j++) GT6(u[j], u[6 + j], u[12 + j], u[18 + j], u[24 + j], u[30 + j], t[j], t[6 + j], t[12 + j]);
      for (i32 i = 0; i < 3; i++) GT6(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5], g[i * 3], g[i * 3 + 1], g[i * 3 + 2]);
      for (i32 tap = 0; tap < 9; tap++) {
        f32 *dst = dw + (tap * ci + ch) * co + o;
        if (co - o >= 4) wasm_v128_store(dst, g[tap]); else store_lanes(dst, g[tap], co - o, 0);
      }
    }
}

// ---- Batch normalisation over NHWC rows, in place on the wasm backend's own heap (one thread). ----
// gamma·(x−μ)/√(σ²+ε) + β with batch statistics; the backward pass is the full batch-statistics
// gradient, so moments and normalisation are one kernel each way instead of about a dozen.

// The passes go through NHWC rows in blocks of BN_ROWS rows. Within a block each group of channels keeps
// its sums and per-channel terms in registers, row after row: summing into memory made every row wait on
// the previous row's store, about a third of the speed.
#define BN_ROWS 64
#define ALWAYS_INLINE static inline __attribute__((always_inline))

// acc[0, 4·vectors) += Σ over n rows (row stride `channels`) of p, or of (p − center)² when centered.
ALWAYS_INLINE void column_block(const f32 *p, i32 n, i32 channels, f32 *acc, const f32 *center, i32 centered, i32 vectors) {
  v128_t sum[4], mid[4];
  for (i32 k = 0; k < vectors; k++) { sum[k] = wasm_f32x4_splat(0); mid[k] = centered ? wasm_v128_load(center + 4 * k) : sum[k]; }
  for (i32 r = 0; r < n; r++, p += channels)
    for (i32 k = 0; k < vectors; k++) {
      const v128_t v = wasm_v128_load(p + 4 * k);
      if (centered) { const v128_t d = wasm_f32x4_sub(v, mid[k]); sum[k] = MADD(d, d, sum[k]); }
      else sum[k] = wasm_f32x4_add(sum[k], v);
    }
  for (i32 k = 0; k < vectors; k++) wasm_v128_store(acc + 4 * k, wasm_f32x4_add(wasm_v128_load(acc + 4 * k), sum[k]));
}

// acc[c] += Σ over n rows of p[r·channels + c], or of (p − center[c])² when centered.
ALWAYS_INLINE void block_sums(const f32 *p, i32 n, i32 channels, f32 *acc, const f32 *center, i32 centered) {
  i32 c = 0;
  for (; c + 16 <= channels; c += 16) column_block(p + c, n, channels, acc + c, centered ? center + c : 0, centered, 4);
  for (; c + 4 <= channels; c += 4) column_block(p + c, n, channels, acc + c, centered ? center + c : 0, centered, 1);
  for (; c < channels; c++) {
    f32 sum = 0;
    for (i32 r = 0; r < n; r++) { const f32 v = p[r * channels + c]; if (centered) { const f32 d = v - center[c]; sum += d * d; } else sum += v; }
    acc[c] += sum;
  }
}

// mean and m2 = Σ (x − mean)² per channel over rows, in one pass over memory: each block of BN_ROWS rows
// is summed, then its squares about its own mean are summed while it is still in L1, and the blocks are
// merged as they come (Chan, Golub and LeVeque's pairwise update). scratch holds 2·channels floats.
static void moments(const f32 *src, i32 rows, i32 channels, f32 *mean, f32 *m2, f32 *scratch) {
  f32 *block_mean = scratch, *block_m2 = scratch + channels;
  zero_floats(mean, channels);
  zero_floats(m2, channels);
  for (i32 r0 = 0; r0 < rows; r0 += BN_ROWS) {
    const i32 n = min_i(BN_ROWS, rows - r0);
    const f32 *p = src + r0 * channels;
    zero_floats(block_mean, channels);
    block_sums(p, n, channels, block_mean, 0, 0);
    for (i32 c = 0; c < channels; c++) block_mean[c] /= (f32)n;
    zero_floats(block_m2, channels);
    block_sums(p, n, channels, block_m2, block_mean, 1);
    const f32 seen = (f32)r0, weight = (f32)n / (f32)(r0 + n);
    for (i32 c = 0; c < channels; c++) {
      const f32 delta = block_mean[c] - mean[c];
      mean[c] += delta * weight;
      m2[c] += block_m2[c] + delta * delta * seen * weight;
    }
  }
}

// y = (x − mean)·scale + beta for n rows of four channels, then max(y, 0) when relu is 1 and
// min(max(y, 0), 6) when it is 2 (ReLU6), the per-channel terms held in registers. The backward pass
// recomputes y the same way, operation for operation, to know where the ReLU passed its gradient.
ALWAYS_INLINE void normalize_block(const f32 *x, i32 n, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta, f32 *y, i32 relu) {
  const v128_t zero = wasm_f32x4_splat(0), six = wasm_f32x4_splat(6), m = wasm_v128_load(mean), sc = wasm_v128_load(scale), sh = wasm_v128_load(beta);
  for (i32 r = 0; r < n; r++, x += channels, y += channels) {
    v128_t v = MADD(wasm_f32x4_sub(wasm_v128_load(x), m), sc, sh);
    if (relu) v = wasm_f32x4_pmax(v, zero);
    if (relu == 2) v = wasm_f32x4_pmin(v, six);
    wasm_v128_store(y, v);
  }
}

ALWAYS_INLINE void normalize_rows_of(const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta, f32 *y, i32 relu) {
  for (i32 r0 = 0; r0 < rows; r0 += BN_ROWS) {
    const i32 n = min_i(BN_ROWS, rows - r0), at = r0 * channels;
    i32 c = 0;
    for (; c + 4 <= channels; c += 4) normalize_block(x + at + c, n, channels, mean + c, scale + c, beta + c, y + at + c, relu);
    for (; c < channels; c++)
      for (i32 r = 0; r < n; r++) {
        const i32 i = at + r * channels + c;
        f32 v = (x[i] - mean[c]) * scale[c] + beta[c];
        if (relu && v < 0) v = 0.f; // as pmax: v < 0 ? 0 : v
        if (relu == 2 && v > 6) v = 6.f; // as pmin: 6 < v ? 6 : v
        y[i] = v;
      }
  }
}

static void normalize_rows(const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta, f32 *y, i32 relu) {
  if (relu == 2) normalize_rows_of(x, rows, channels, mean, scale, beta, y, 2);
  else if (relu) normalize_rows_of(x, rows, channels, mean, scale, beta, y, 1);
  else normalize_rows_of(x, rows, channels, mean, scale, beta, y, 0);
}

// g where the batch norm's output y = d·scale + beta (d = x − mean) was positive (and, for ReLU6, cap 2,
// at most 6), else 0: the gradient through a ReLU fused into the batch norm, with y recomputed exactly as
// normalize_block computes it. As tfjs' ReLU then clip_by_value: 0 < y ≤ 6.
ALWAYS_INLINE v128_t relu_masked(v128_t g, v128_t d, v128_t scale, v128_t beta, i32 cap) {
  const v128_t y = MADD(d, scale, beta);
  v128_t pass = wasm_f32x4_gt(y, wasm_f32x4_splat(0));
  if (cap == 2) pass = wasm_v128_and(pass, wasm_f32x4_le(y, wasm_f32x4_splat(6)));
  return wasm_v128_and(g, pass);
}
// The same for one channel; without scale (no ReLU) g as it is.
static inline f32 relu_masked1(f32 g, f32 d, const f32 *scale, const f32 *beta, i32 c, i32 cap) {
  if (!scale) return g;
  const f32 y = d * scale[c] + beta[c];
  return y > 0 && (cap != 2 || y <= 6) ? g : 0.f;
}

// sum_dy[0, 4·vectors) += Σ dy and sum_dyx += Σ dy·(x − mean) over n rows, in registers as in column_block;
// dy masked by the fused ReLU when masked (1 ReLU, 2 ReLU6; see relu_masked).
ALWAYS_INLINE void gradient_block(const f32 *dy, const f32 *x, i32 n, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta,
                                  f32 *sum_dy, f32 *sum_dyx, i32 masked, i32 vectors) {
  v128_t a[2], b[2], m[2], sc[2], sh[2];
  const v128_t zero = wasm_f32x4_splat(0);
  for (i32 k = 0; k < vectors; k++) {
    a[k] = b[k] = zero;
    m[k] = wasm_v128_load(mean + 4 * k);
    sc[k] = masked ? wasm_v128_load(scale + 4 * k) : zero;
    sh[k] = masked ? wasm_v128_load(beta + 4 * k) : zero;
  }
  for (i32 r = 0; r < n; r++, dy += channels, x += channels)
    for (i32 k = 0; k < vectors; k++) {
      const v128_t d = wasm_f32x4_sub(wasm_v128_load(x + 4 * k), m[k]);
      v128_t g = wasm_v128_load(dy + 4 * k);
      if (masked) g = relu_masked(g, d, sc[k], sh[k], masked);
      a[k] = wasm_f32x4_add(a[k], g);
      b[k] = MADD(g, d, b[k]);
    }
  for (i32 k = 0; k < vectors; k++) {
    wasm_v128_store(sum_dy + 4 * k, wasm_f32x4_add(wasm_v128_load(sum_dy + 4 * k), a[k]));
    wasm_v128_store(sum_dyx + 4 * k, wasm_f32x4_add(wasm_v128_load(sum_dyx + 4 * k), b[k]));
  }
}

ALWAYS_INLINE void gradient_sums_of(const f32 *dy, const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale,
                                    const f32 *beta, f32 *sum_dy, f32 *sum_dyx, i32 masked) {
  zero_floats(sum_dy, channels);
  zero_floats(sum_dyx, channels);
  for (i32 r0 = 0; r0 < rows; r0 += BN_ROWS) {
    const i32 n = min_i(BN_ROWS, rows - r0);
    const f32 *dyp = dy + r0 * channels, *xp = x + r0 * channels;
    i32 c = 0;
    for (; c + 8 <= channels; c += 8)
      gradient_block(dyp + c, xp + c, n, channels, mean + c, masked ? scale + c : 0, masked ? beta + c : 0, sum_dy + c, sum_dyx + c, masked, 2);
    for (; c + 4 <= channels; c += 4)
      gradient_block(dyp + c, xp + c, n, channels, mean + c, masked ? scale + c : 0, masked ? beta + c : 0, sum_dy + c, sum_dyx + c, masked, 1);
    for (; c < channels; c++) {
      f32 a = 0, b = 0;
      for (i32 r = 0; r < n; r++) {
        const f32 d = xp[r * channels + c] - mean[c], g = relu_masked1(dyp[r * channels + c], d, masked ? scale : 0, beta, c, masked);
        a += g; b += g * d;
      }
      sum_dy[c] += a; sum_dyx[c] += b;
    }
  }
}

// sum_dy = Σ dy and sum_dyx = Σ dy·(x − mean) over rows, dy masked by the fused ReLU when scale and beta are set
// (cap 2: ReLU6).
static void gradient_sums(const f32 *dy, const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta,
                          f32 *sum_dy, f32 *sum_dyx, i32 cap) {
  if (scale && cap == 2) gradient_sums_of(dy, x, rows, channels, mean, scale, beta, sum_dy, sum_dyx, 2);
  else if (scale) gradient_sums_of(dy, x, rows, channels, mean, scale, beta, sum_dy, sum_dyx, 1);
  else gradient_sums_of(dy, x, rows, channels, mean, 0, 0, sum_dy, sum_dyx, 0);
}

// dx for n rows of four channels, the per-channel terms held in registers.
ALWAYS_INLINE void gradient_rows_block(const f32 *dy, const f32 *x, i32 n, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta,
                                       const f32 *k1, const f32 *k3, const f32 *shift, f32 *dx, i32 masked) {
  const v128_t zero = wasm_f32x4_splat(0), m = wasm_v128_load(mean), a = wasm_v128_load(k1), b = wasm_v128_load(k3), s = wasm_v128_load(shift);
  const v128_t sc = masked ? wasm_v128_load(scale) : zero, sh = masked ? wasm_v128_load(beta) : zero;
  for (i32 r = 0; r < n; r++, dy += channels, x += channels, dx += channels) {
    const v128_t d = wasm_f32x4_sub(wasm_v128_load(x), m);
    v128_t g = wasm_v128_load(dy);
    if (masked) g = relu_masked(g, d, sc, sh, masked);
    wasm_v128_store(dx, wasm_f32x4_sub(wasm_f32x4_mul(a, wasm_f32x4_sub(g, s)), wasm_f32x4_mul(b, d)));
  }
}

ALWAYS_INLINE void gradient_rows_of(const f32 *dy, const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta,
                                    const f32 *k1, const f32 *k3, const f32 *shift, f32 *dx, i32 masked) {
  for (i32 r0 = 0; r0 < rows; r0 += BN_ROWS) {
    const i32 n = min_i(BN_ROWS, rows - r0), at = r0 * channels;
    i32 c = 0;
    for (; c + 4 <= channels; c += 4)
      gradient_rows_block(dy + at + c, x + at + c, n, channels, mean + c, masked ? scale + c : 0, masked ? beta + c : 0, k1 + c, k3 + c, shift + c, dx + at + c, masked);
    for (; c < channels; c++)
      for (i32 r = 0; r < n; r++) {
        const i32 i = at + r * channels + c;
        const f32 d = x[i] - mean[c];
        dx[i] = k1[c] * (relu_masked1(dy[i], d, masked ? scale : 0, beta, c, masked) - shift[c]) - k3[c] * d;
      }
  }
}

// dx = k1·(dy − shift) − k3·(x − mean) for rows (see batchnorm_backward), dy masked as in gradient_sums.
static void gradient_rows(const f32 *dy, const f32 *x, i32 rows, i32 channels, const f32 *mean, const f32 *scale, const f32 *beta,
                          const f32 *k1, const f32 *k3, const f32 *shift, f32 *dx, i32 cap) {
  if (scale && cap == 2) gradient_rows_of(dy, x, rows, channels, mean, scale, beta, k1, k3, shift, dx, 2);
  else if (scale) gradient_rows_of(dy, x, rows, channels, mean, scale, beta, k1, k3, shift, dx, 1);
  else gradient_rows_of(dy, x, rows, channels, mean, 0, 0, k1, k3, shift, dx, 0);
}

// y (ReLU'd when relu is 1, ReLU6'd when 2), mean, variance (population, as tf.moments) and scale = γ/σ from x.
// temp holds 2·channels floats.
EXPORT(batchnorm_forward) void batchnorm_forward(i32 rows, i32 channels, const f32 *x, const f32 *gamma, const f32 *beta,
                                                 f32 *y, f32 *mean, f32 *variance, f32 *scale, i32 relu, f32 *temp, f32 epsilon) {
  moments(x, rows, channels, mean, variance, temp);
  for (i32 c = 0; c < channels; c++) {
    variance[c] /= (f32)rows;
    scale[c] = gamma[c] / __builtin_sqrtf(variance[c] + epsilon);
  }
  normalize_rows(x, rows, channels, mean, scale, beta, y, relu);
}

// dx, dγ = Σ dy·x̂, dβ = Σ dy, with dx = γ/σ · (dy − dβ/R − x̂·dγ/R). temp holds 3·channels floats.
// With scale and beta (the forward's γ/σ and β) dy first passes back through the fused ReLU (ReLU6 when cap
// is 2); 0 for none.
EXPORT(batchnorm_backward) void batchnorm_backward(i32 rows, i32 channels, const f32 *dy, const f32 *x, const f32 *gamma,
                                                   const f32 *mean, const f32 *variance, const f32 *scale, const f32 *beta,
                                                   f32 *dx, f32 *dgamma, f32 *dbeta, f32 *temp, f32 epsilon, i32 cap) {
  f32 *k1 = temp, *k3 = temp + channels, *shift = temp + 2 * channels;
  gradient_sums(dy, x, rows, channels, mean, scale, beta, dbeta, dgamma, cap);
  const f32 inv_rows = 1.f / (f32)rows;
  // k1 = γ/σ and k3 = γ·dγ/(σ²R), so dx = k1·(dy − dβ/R) − k3·(x − μ).
  for (i32 c = 0; c < channels; c++) {
    const f32 inv_std = 1.f / __builtin_sqrtf(variance[c] + epsilon);
    dgamma[c] *= inv_std;
    k1[c] = gamma[c] * inv_std;
    k3[c] = k1[c] * dgamma[c] * inv_std * inv_rows;
    shift[c] = dbeta[c] * inv_rows;
  }
  gradient_rows(dy, x, rows, channels, mean, scale, beta, k1, k3, shift, dx, cap);
}

// The same batch norm on every thread of the pool (shared heap). The sums take equal shares of the
// rows into partials of their own (see take() for why a reduction does not take chunks), and the caller
// combines the partials per channel between jobs; the row-wise passes take chunks.
#define BN_CHUNK 1024

// Per-thread moments of its equal share of the rows (see moments), which the caller merges.
// Each thread's partial: mean, m2, then scratch.
EXPORT(moments_job) void moments_job(const MomentsArgs *args, i32 thread, i32 threads) {
  const i32 rows = args->rows, channels = args->channels;
  f32 *partial = PTR(args->partials) + thread * 4 * channels;
  i32 begin, end;
  split(rows, thread, threads, &begin, &end);
  moments(PTR(args->src) + begin * channels, end - begin, channels, partial, partial + channels, partial + 2 * channels);
}

EXPORT(normalize_rows_job) void normalize_rows_job(NormalizeRowsArgs *args, i32 thread, i32 threads) {
  const i32 rows = args->rows, channels = args->channels;
  (void)thread; (void)threads;
  for (i32 r0, n; (n = take(&args->next, rows, BN_CHUNK, &r0)) > 0;)
    normalize_rows(PTR(args->x) + r0 * channels, n, channels, PTR(args->mean), PTR(args->scale), PTR(args->beta), PTR(args->y) + r0 * channels, args->relu);
}

// Per-thread Σdy and Σdy·(x − mean), dy through the fused ReLU when scale is set.
EXPORT(gradient_sums_job) void gradient_sums_job(const GradientSumsArgs *args, i32 thread, i32 threads) {
  const i32 rows = args->rows, channels = args->channels;
  f32 *partial = PTR(args->partials) + thread * 2 * channels;
  i32 begin, end;
  split(rows, thread, threads, &begin, &end);
  gradient_sums(PTR(args->dy) + begin * channels, PTR(args->x) + begin * channels, end - begin, channels, PTR(args->mean),
                args->scale ? PTR(args->scale) : 0, args->scale ? PTR(args->beta) : 0, partial, partial + channels, args->cap);
}

EXPORT(gradient_rows_job) void gradient_rows_job(GradientRowsArgs *args, i32 thread, i32 threads) {
  const i32 rows = args->rows, channels = args->channels;
  (void)thread; (void)threads;
  for (i32 r0, n; (n = take(&args->next, rows, BN_CHUNK, &r0)) > 0;)
    gradient_rows(PTR(args->dy) + r0 * channels, PTR(args->x) + r0 * channels, n, channels, PTR(args->mean),
                  args->scale ? PTR(args->scale) : 0, PTR(args->beta), PTR(args->k1), PTR(args->k3), PTR(args->shift), PTR(args->dx) + r0 * channels, args->cap);
}

// ---- ReLU's gradient in one pass: dx = dy where x > 0, else 0 (tfjs does step, cast and multiply). ----
EXPORT(relu_backward) void relu_backward(i32 n, const f32 *dy, const f32 *x, f32 *dx) {
  const v128_t zero = wasm_f32x4_splat(0);
  i32 i = 0;
  for (; i + 4 <= n; i += 4)
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), wasm_f32x4_gt(wasm_v128_load(x + i), zero)));
  for (; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : 0.f;
}

// ---- clip_by_value's gradient (ReLU6 is a ReLU then a clip to [0, 6]): dx = dy where lo ≤ x ≤ hi, else 0. ----
EXPORT(clip_backward) void clip_backward(i32 n, const f32 *dy, const f32 *x, f32 lo, f32 hi, f32 *dx) {
  const v128_t vlo = wasm_f32x4_splat(lo), vhi = wasm_f32x4_splat(hi);
  i32 i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    wasm_v128_store(dx + i, wasm_v128_and(wasm_v128_load(dy + i), wasm_v128_and(wasm_f32x4_ge(v, vlo), wasm_f32x4_le(v, vhi))));
  }
  for (; i < n; i++) dx[i] = x[i] >= lo && x[i] <= hi ? dy[i] : 0.f;
}

// ---- A residual sum and the ReLU after it in one pass: out = max(a + b, 0). ----
EXPORT(add_relu) void add_relu(i32 n, const f32 *a, const f32 *b, f32 *out) {
  const v128_t zero = wasm_f32x4_splat(0);
  i32 i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(out + i, wasm_f32x4_pmax(wasm_f32x4_add(wasm_v128_load(a + i), wasm_v128_load(b + i)), zero));
  for (; i < n; i++) { const f32 v = a[i] + b[i]; out[i] = v < 0 ? 0.f : v; }
}

// ---- One SGD-with-momentum step, PyTorch-style (heavy ball, L2 decay folded into the gradient). ----
// buffer' = momentum·buffer + g + decay·w; w' = w − lr·buffer'. Writes the new values to out_w, out_buffer.
EXPORT(sgd_momentum) void sgd_momentum(i32 n, const f32 *w, const f32 *g, const f32 *buffer, f32 lr, f32 momentum, f32 decay,
                                       f32 *out_w, f32 *out_buffer) {
  const v128_t vlr = wasm_f32x4_splat(lr), vm = wasm_f32x4_splat(momentum), vd = wasm_f32x4_splat(decay);
  i32 i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t wi = wasm_v128_load(w + i);
    const v128_t grad = wasm_f32x4_add(wasm_v128_load(g + i), wasm_f32x4_mul(wi, vd));
    const v128_t b = wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(buffer + i), vm), grad);
    wasm_v128_store(out_buffer + i, b);
    wasm_v128_store(out_w + i, wasm_f32x4_sub(wi, wasm_f32x4_mul(b, vlr)));
  }
  for (; i < n; i++) {
    const f32 b = buffer[i] * momentum + (g[i] + w[i] * decay);
    out_buffer[i] = b;
    out_w[i] = w[i] - b * lr;
  }
}

// ---- Depthwise convolution (channel multiplier 1), in place on the wasm backend's heap (one thread). ----
// Vectorised across channels, which are contiguous in NHWC. y/bias/activation are used by the
// forward pass only.

static inline void madd_row(f32 *acc, const f32 *a, const f32 *b, i32 n) {
  i32 i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(acc + i, MADD(wasm_v128_load(a + i), wasm_v128_load(b + i), wasm_v128_load(acc + i)));
  for (; i < n; i++) acc[i] += a[i] * b[i];
}

// Visits every (output pixel, filter tap) pair inside the input and does one channel-vector multiply-add:
// FORWARD y[pixel] += x[tap]·w[k], INPUT dx[tap] += dy[pixel]·w[k], FILTER dw[k] += x[tap]·dy[pixel].
enum { FORWARD, INPUT, FILTER };

static void depthwise_taps(const Depthwise *g, i32 mode, const f32 *p, const f32 *q, f32 *out) {
  const i32 c = g->c;
  for (i32 b = 0; b < g->n; b++)
    for (i32 oy = 0; oy < g->ho; oy++)
      for (i32 ox = 0; ox < g->wo; ox++) {
        const i32 pixel = ((b * g->ho + oy) * g->wo + ox) * c;
        FOR_EACH_INSIDE_TAP(g, oy, ox, ky, kx, iy, ix) {
          const i32 tap = ((b * g->h + iy) * g->w + ix) * c, k = (ky * g->kw + kx) * c;
          if (mode == FORWARD) madd_row(out + pixel, p + tap, q + k, c);
          else if (mode == INPUT) madd_row(out + tap, p + pixel, q + k, c);
          else madd_row(out + k, p + tap, q + pixel, c);
        }
      }
}

EXPORT(depthwise_forward) void depthwise_forward(const Depthwise *g, const f32 *x, const f32 *filter, f32 *y, const f32 *bias, i32 activation) {
  zero_floats(y, g->n * g->ho * g->wo * g->c);
  depthwise_taps(g, FORWARD, x, filter, y);
  bias_activation(y, g->n * g->ho * g->wo, g->c, bias, activation);
}

EXPORT(depthwise_backprop_input) void depthwise_backprop_input(const Depthwise *g, const f32 *dy, const f32 *filter, f32 *dx) {
  zero_floats(dx, g->n * g->h * g->w * g->c);
  depthwise_taps(g, INPUT, dy, filter, dx);
}

EXPORT(depthwise_backprop_filter) void depthwise_backprop_filter(const Depthwise *g, const f32 *x, const f32 *dy, f32 *dfilter) {
  zero_floats(dfilter, g->kh * g->kw * g->c);
  depthwise_taps(g, FILTER, x, dy, dfilter);
}
