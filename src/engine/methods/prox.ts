import * as tf from '@tensorflow/tfjs';

/**
 * Group proximal operators of the l2,p penalty (p in [0, 1]).
 *
 * For a group vector v with a = ‖v‖,
 *   prox_{τ‖·‖^p}(v) = s_p(a; τ) · v / a      (0 when a = 0)
 *   s_p(a; τ)        = argmin_{x ≥ 0} ½(x − a)² + τ·x^p      (x^0 is the indicator [x ≠ 0])
 *
 * s_p is zero up to a threshold a* and jumps to a positive value above it (for p < 1).
 * At a = a* both 0 and the positive root minimise; we always pick 0.
 * Closed forms are exact for p = 0, 1/2, 2/3 and 1; any other p in (0, 1) uses a
 * monotone Newton iteration that converges to machine precision.
 */

const TWO_THIRDS = 2 / 3;
const NEWTON_MAX_ITERATIONS = 60;

function isTwoThirds(p: number): boolean {
  return Math.abs(p - TWO_THIRDS) < 1e-12;
}

function checkArguments(tau: number, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`prox: p must lie in [0, 1], got ${p}`);
  if (!(tau >= 0)) throw new RangeError(`prox: tau must be non-negative, got ${tau}`);
}

/**
 * Left end β* of the non-zero branch for p in (0, 1): the smallest value the prox takes
 * above its threshold. Below it the scalar objective is not convex.
 */
export function proxBranchStart(tau: number, p: number): number {
  checkArguments(tau, p);
  if (p === 0) return Math.sqrt(2 * tau);
  if (p === 1) return 0;
  return Math.pow(2 * tau * (1 - p), 1 / (2 - p));
}

/** Threshold a*: s_p(a; τ) = 0 for every a ≤ a*. */
export function proxThreshold(tau: number, p: number): number {
  checkArguments(tau, p);
  if (tau === 0) return 0;
  if (p === 1) return tau;
  if (p === 0) return Math.sqrt(2 * tau);
  const beta = proxBranchStart(tau, p);
  return (beta * (2 - p)) / (2 * (1 - p));
}

/** The scalar objective ½(x − a)² + τ·x^p that s_p minimises (x ≥ 0). */
export function proxObjective(x: number, a: number, tau: number, p: number): number {
  const penalty = x === 0 ? 0 : p === 0 ? 1 : Math.pow(x, p);
  return 0.5 * (x - a) * (x - a) + tau * penalty;
}

function proxHalf(a: number, tau: number): number {
  const argument = Math.min(1, Math.max(-1, (tau / 4) * Math.pow(a / 3, -1.5)));
  const phi = Math.acos(argument);
  return (2 / 3) * a * (1 + Math.cos((2 * Math.PI) / 3 - (2 / 3) * phi));
}

function proxTwoThirds(a: number, tau: number): number {
  // Classical closed form for (x − a)² + λ'|x|^{2/3}; the ½-scaled problem has λ' = 2τ.
  const lam = 2 * tau;
  const theta = Math.acosh(Math.max(1, (27 * a * a) / (16 * Math.pow(lam, 1.5))));
  const big = (2 / Math.sqrt(3)) * Math.pow(lam, 0.25) * Math.sqrt(Math.cosh(theta / 3));
  const root = Math.sqrt(Math.max(0, (2 * a) / big - big * big));
  return Math.pow((big + root) / 2, 3);
}

/**
 * Larger root of x + τ·p·x^{p−1} = a in [β*, a]. The left side is convex and increasing
 * there, so Newton from x = a decreases monotonically onto the root; clamping only guards
 * rounding.
 */
function proxNewton(a: number, tau: number, p: number): number {
  const lower = proxBranchStart(tau, p);
  let x = a;
  for (let i = 0; i < NEWTON_MAX_ITERATIONS; i++) {
    const g = x + tau * p * Math.pow(x, p - 1) - a;
    const slope = 1 + tau * p * (p - 1) * Math.pow(x, p - 2);
    const next = Math.min(a, Math.max(lower, x - g / slope));
    const change = Math.abs(next - x);
    x = next;
    if (change <= 1e-15 * a) break;
  }
  return x;
}

/**
 * s_p(a; τ): the magnitude the l2,p prox gives a group of norm `a`.
 * Exact closed forms for p ∈ {0, 1/2, 2/3, 1}; Newton for other p ∈ (0, 1).
 */
export function proxScale(a: number, tau: number, p: number): number {
  checkArguments(tau, p);
  if (!(a >= 0)) throw new RangeError(`prox: a must be a non-negative norm, got ${a}`);
  if (tau === 0) return a;
  if (a <= proxThreshold(tau, p)) return 0;
  if (p === 1) return a - tau;
  if (p === 0) return a;
  const x = p === 0.5 ? proxHalf(a, tau) : isTwoThirds(p) ? proxTwoThirds(a, tau) : proxNewton(a, tau, p);
  // Rounding right above the threshold may tip the comparison; ties go to 0.
  return proxObjective(x, a, tau, p) < proxObjective(0, a, tau, p) ? x : 0;
}

/**
 * Per-group multipliers s_p(a_i; τ) / a_i for an array of group norms (0 for a zero norm), in
 * double precision. Multiplying group i by factor i applies the group prox.
 */
export function proxFactors(norms: ArrayLike<number>, tau: number | ArrayLike<number>, p: number): Float64Array {
  const factors = new Float64Array(norms.length);
  for (let i = 0; i < norms.length; i++) {
    const a = norms[i];
    const t = typeof tau === 'number' ? tau : tau[i];
    factors[i] = a > 0 ? proxScale(a, t, p) / a : 0;
  }
  return factors;
}

/**
 * Vectorised s_p(a; τ) over a tensor of group norms, with tf ops only (float32 on most
 * backends). Same thresholds and tie rule as `proxScale`; general p uses a fixed number of
 * clamped Newton steps, enough for float32 convergence. The caller owns the result.
 */
export function proxScaleTensor(norms: tf.Tensor, tau: number, p: number): tf.Tensor {
  checkArguments(tau, p);
  return tf.tidy(() => {
    const a = tf.relu(norms.toFloat());
    if (tau === 0) return a.clone();
    const threshold = proxThreshold(tau, p);
    const above = tf.greater(a, threshold);
    const zeros = tf.zerosLike(a);
    if (p === 1) return tf.where(above, tf.sub(a, tau), zeros);
    if (p === 0) return tf.where(above, a, zeros);
    // Evaluate the non-zero branch on a safe copy of a (≥ threshold) so no NaN appears.
    const safe = tf.maximum(a, Math.max(threshold, 1e-30));
    let value: tf.Tensor;
    if (p === 0.5) {
      const argument = tf.clipByValue(tf.mul(tau / 4, tf.pow(tf.div(safe, 3), -1.5)), -1, 1);
      const phi = tf.acos(argument);
      value = tf.mul(tf.mul(safe, 2 / 3), tf.add(1, tf.cos(tf.sub((2 * Math.PI) / 3, tf.mul(phi, 2 / 3)))));
    } else if (isTwoThirds(p)) {
      const lam = 2 * tau;
      const theta = tf.acosh(tf.maximum(tf.mul(tf.square(safe), 27 / (16 * Math.pow(lam, 1.5))), 1));
      const big = tf.mul((2 / Math.sqrt(3)) * Math.pow(lam, 0.25), tf.sqrt(tf.cosh(tf.div(theta, 3))));
      const root = tf.sqrt(tf.relu(tf.sub(tf.div(tf.mul(safe, 2), big), tf.square(big))));
      value = tf.pow(tf.div(tf.add(big, root), 2), 3);
    } else {
      const lower = proxBranchStart(tau, p);
      let x: tf.Tensor = safe;
      for (let i = 0; i < 40; i++) {
        const g = tf.sub(tf.add(x, tf.mul(tau * p, tf.pow(x, p - 1))), safe);
        const slope = tf.add(1, tf.mul(tau * p * (p - 1), tf.pow(x, p - 2)));
        x = tf.minimum(safe, tf.maximum(lower, tf.sub(x, tf.div(g, slope))));
      }
      value = x;
    }
    return tf.where(above, value, zeros);
  });
}

/** Vectorised multipliers s_p(a; τ)/a (0 where a = 0). The caller owns the result. */
export function proxFactorsTensor(norms: tf.Tensor, tau: number, p: number): tf.Tensor {
  return tf.tidy(() => {
    const a = tf.relu(norms.toFloat());
    const scale = proxScaleTensor(a, tau, p);
    const positive = tf.greater(a, 0);
    return tf.where(positive, tf.div(scale, tf.where(positive, a, tf.onesLike(a))), tf.zerosLike(a));
  });
}
