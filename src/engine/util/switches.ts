/**
 * The engine's environment switches: the only place that reads `PRUNELENS_*` variables. Each is
 * read once, on first use; benches and tests that compare both settings in one process set them
 * with `setSwitches`, in the environment's own terms.
 *
 * | variable | effect |
 * |---|---|
 * | `PRUNELENS_THREADS=n` | threads of the kernel pool (default: every core the process may use) |
 * | `PRUNELENS_SIMD_KERNELS=0` | the wasm backend keeps tfjs' kernels plus PruneLens' gradient kernels |
 * | `PRUNELENS_RELAXED_SIMD=0` | the plain-SIMD build of the kernels even where the runtime has relaxed SIMD (fused multiply-add) |
 * | `PRUNELENS_WINOGRAD=0` | 3×3 stride-1 convolutions use im2col like the others |
 * | `PRUNELENS_SHARED_HEAP=0` | the wasm heap stays private; the kernels copy operands in and out |
 * | `PRUNELENS_FUSE_RELU=0` | training keeps ReLU a layer of its own |
 * | `PRUNELENS_DEBUG=1` | a failed session also prints its stack trace to stderr |
 */

export interface Switches {
  /** Kernel pool threads; undefined: every core. */
  threads: number | undefined;
  simdKernels: boolean;
  /** The relaxed-SIMD build of the kernels where the runtime has relaxed SIMD. */
  relaxedSimd: boolean;
  winograd: boolean;
  sharedHeap: boolean;
  fuseRelu: boolean;
  debug: boolean;
}

type Environment = Record<string, string | undefined>;

const on = (value: string | undefined) => value !== '0';

/** Each switch's variable and how its value reads. */
const VARIABLES: { [K in keyof Switches]: { variable: string; read: (value: string | undefined) => Switches[K] } } = {
  threads: {
    variable: 'PRUNELENS_THREADS',
    read: (value) => {
      const n = Number(value);
      return value !== undefined && Number.isInteger(n) && n > 0 ? n : undefined;
    },
  },
  simdKernels: { variable: 'PRUNELENS_SIMD_KERNELS', read: on },
  relaxedSimd: { variable: 'PRUNELENS_RELAXED_SIMD', read: on },
  winograd: { variable: 'PRUNELENS_WINOGRAD', read: on },
  sharedHeap: { variable: 'PRUNELENS_SHARED_HEAP', read: on },
  fuseRelu: { variable: 'PRUNELENS_FUSE_RELU', read: on },
  debug: { variable: 'PRUNELENS_DEBUG', read: (value) => Boolean(value) },
};

const NAMES = Object.keys(VARIABLES) as (keyof Switches)[];

function readSwitches(env: Environment, base?: Switches): Switches {
  const result = { ...base } as Record<keyof Switches, unknown>;
  for (const name of NAMES) {
    const { variable, read } = VARIABLES[name];
    if (!base || variable in env) result[name] = read(env[variable]);
  }
  return result as unknown as Switches;
}

let current: Switches | undefined;

/** The switches, read from the environment on first use. */
export function switches(): Readonly<Switches> {
  return (current ??= readSwitches(process.env));
}

/**
 * Sets switches for this process as the environment would (`{ PRUNELENS_WINOGRAD: '0' }`; undefined
 * unsets one); returns a function that restores the previous ones. For A/B runs in one process.
 */
export function setSwitches(env: Environment): () => void {
  const unknown = Object.keys(env).filter((variable) => !NAMES.some((name) => VARIABLES[name].variable === variable));
  if (unknown.length) throw new Error(`unknown switch ${unknown.join(', ')}; known: ${NAMES.map((name) => VARIABLES[name].variable).join(', ')}`);
  const previous = switches();
  current = readSwitches(env, previous);
  return () => { current = previous; };
}
