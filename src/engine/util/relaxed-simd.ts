/**
 * WebAssembly relaxed SIMD (fused multiply-add for the training kernels): whether this runtime has it,
 * and the flag a Node child process needs for it. V8 ships it by default from Node 22 and in current
 * Electron; Node 20–21 (V8 11) have it behind `--experimental-wasm-relaxed-simd`. No dependencies: the
 * extension host and the CLI ask before they start the engine.
 */

export const RELAXED_SIMD_FLAG = '--experimental-wasm-relaxed-simd';

/** A module of one function, `v128.const ×3; f32x4.relaxed_madd`: it validates only where relaxed SIMD is on. */
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x0a, 0x3d, 0x01, 0x3b, 0x00, // code: one body of 59 bytes, no locals
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array<number>(16).fill(0)]), // v128.const 0, three times
  0xfd, 0x85, 0x02, // f32x4.relaxed_madd (0xfd 261)
  0x0b, // end
]);

let probed: boolean | undefined;

/** Whether this runtime compiles relaxed-SIMD instructions (checked once). */
export function runtimeHasRelaxedSimd(): boolean {
  return (probed ??= WebAssembly.validate(PROBE));
}

/**
 * Flags to add to `execArgv`, a child's Node flags (`fork`, `spawn(process.execPath)`), so that the child
 * has relaxed SIMD: none where they hold the flag already, or where this runtime has relaxed SIMD without
 * it (the child is the same binary); the V8 flag where this process was given it, and on Node 16–21 (and
 * Electron as Node of that age), whose V8 knows it.
 */
export function relaxedSimdExecArgv(execArgv: readonly string[] = process.execArgv): string[] {
  if (execArgv.includes(RELAXED_SIMD_FLAG)) return [];
  if (process.execArgv.includes(RELAXED_SIMD_FLAG)) return [RELAXED_SIMD_FLAG];
  if (runtimeHasRelaxedSimd()) return [];
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 16 && major < 22 ? [RELAXED_SIMD_FLAG] : [];
}
