import { ONNX_RUNTIME, type LatencySummary } from '../../../protocol/events.js';
import { timingSummary } from '../../metrics/timing.js';
import { seededRandom } from '../../util/random.js';

/**
 * ONNX Runtime (the optional `onnxruntime-node` package) as the deployment runtime's measure:
 * latency of an .onnx file and its outputs on given inputs. Absent, callers fall back to tfjs.
 */

type Ort = typeof import('onnxruntime-node');
type Session = import('onnxruntime-node').InferenceSession;

let ort: Ort | null | undefined;

/** onnxruntime-node when it is installed and loads on this platform, else undefined. */
export async function onnxRuntime(): Promise<Ort | undefined> {
  if (ort === undefined) {
    try {
      ort = (await import('onnxruntime-node')) as Ort;
      // The CommonJS build exposes its API on `default` when imported from ESM.
      if (!ort.InferenceSession && (ort as unknown as { default?: Ort }).default) ort = (ort as unknown as { default: Ort }).default;
    } catch {
      ort = null;
    }
  }
  return ort ?? undefined;
}

/** The backend name reports show for ONNX Runtime timings. */
export const ORT_BACKEND = ONNX_RUNTIME;

async function open(rt: Ort, model: string | Uint8Array, threads?: number): Promise<Session> {
  const options = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' as const, ...(threads ? { intraOpNumThreads: threads } : {}) };
  return typeof model === 'string' ? rt.InferenceSession.create(model, options) : rt.InferenceSession.create(model, options);
}

export interface OnnxRunInput {
  /** NCHW (or [N, F]) values. */
  data: Float32Array;
  shape: number[];
}

/** Runs a model once and returns its outputs in graph order (ONNX layout). */
export async function runOnnx(model: string | Uint8Array, input: OnnxRunInput): Promise<{ data: Float32Array; shape: number[] }[]> {
  const rt = await onnxRuntime();
  if (!rt) throw new Error('onnxruntime-node is not installed');
  const session = await open(rt, model);
  try {
    const feeds = { [session.inputNames[0]]: new rt.Tensor('float32', input.data, input.shape) };
    const results = await session.run(feeds);
    return session.outputNames.map((name) => ({ data: results[name].data as Float32Array, shape: [...results[name].dims] }));
  } finally {
    await session.release();
  }
}

/** Median time of one ONNX Runtime run on a random batch and the runs' interquartile range, warm-up excluded. */
export async function measureOnnxLatency(model: string | Uint8Array, inputShape: readonly number[], options: { runs: number; batchSize: number; warmup?: number }): Promise<LatencySummary | undefined> {
  const rt = await onnxRuntime();
  if (!rt) return undefined;
  const session = await open(rt, model);
  try {
    const shape = [options.batchSize, ...inputShape];
    const count = shape.reduce((n, d) => n * d, 1);
    const random = seededRandom(17);
    const data = Float32Array.from({ length: count }, () => random() - 0.5);
    const feeds = { [session.inputNames[0]]: new rt.Tensor('float32', data, shape) };
    const once = async () => {
      const start = performance.now();
      await session.run(feeds);
      return performance.now() - start;
    };
    for (let i = 0; i < Math.max(0, options.warmup ?? 1); i++) await once();
    const times: number[] = [];
    for (let i = 0; i < Math.max(1, options.runs); i++) times.push(await once());
    return { ...timingSummary(times), batchSize: options.batchSize, runs: times.length, backend: ORT_BACKEND };
  } finally {
    await session.release();
  }
}
