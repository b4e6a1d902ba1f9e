/**
 * Gives the wasm backend a shared heap: its module is rewritten, as it is instantiated, to import
 * a shared WebAssembly.Memory instead of defining its own, so PruneLens' kernel threads compute on
 * tensors where they lie instead of copying every operand in and every result out. The rewrite
 * touches only how the memory is declared (same index, size and maximum); the module's code is
 * unchanged and runs on a shared memory as on any other. PRUNELENS_SHARED_HEAP=0 turns it off.
 */
import { switches } from '../../util/switches.js';

const MEMORY_SECTION = 5, IMPORT_SECTION = 2, MEMORY_KIND = 2;

function readLeb(bytes: Uint8Array, at: number): { value: number; next: number } {
  let value = 0, shift = 0, next = at;
  for (;;) {
    const byte = bytes[next++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(byte & 0x80)) return { value, next };
  }
}

function leb(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return out;
}

const name = (text: string) => [...leb(text.length), ...Buffer.from(text, 'utf8')];

/**
 * The module with its one defined memory turned into an import of `env.memory` (shared, with the
 * same minimum and maximum), and that memory's limits; undefined for any other shape of module.
 */
export function importSharedMemory(binary: Uint8Array): { binary: Uint8Array<ArrayBuffer>; initial: number; maximum: number } | undefined {
  if (binary.length < 8 || binary[0] !== 0 || binary[1] !== 0x61 || binary[2] !== 0x73 || binary[3] !== 0x6d) return undefined;
  const sections: { id: number; start: number; body: number; end: number }[] = [];
  for (let at = 8; at < binary.length;) {
    const id = binary[at];
    const { value: size, next } = readLeb(binary, at + 1);
    sections.push({ id, start: at, body: next, end: next + size });
    at = next + size;
  }
  const memory = sections.find((s) => s.id === MEMORY_SECTION), imports = sections.find((s) => s.id === IMPORT_SECTION);
  if (!memory || !imports) return undefined;
  const count = readLeb(binary, memory.body);
  if (count.value !== 1) return undefined;
  const flags = binary[count.next];
  if (flags !== 1) return undefined; // a maximum and not already shared
  const initial = readLeb(binary, count.next + 1), maximum = readLeb(binary, initial.next);
  const importCount = readLeb(binary, imports.body);
  const entry = [...name('env'), ...name('memory'), MEMORY_KIND, 0x03, ...leb(initial.value), ...leb(maximum.value)];
  const importBody = [...leb(importCount.value + 1), ...binary.subarray(importCount.next, imports.end), ...entry];
  const parts: (Uint8Array | number[])[] = [binary.subarray(0, 8)];
  for (const s of sections) {
    if (s === memory) continue;
    parts.push(s === imports ? [IMPORT_SECTION, ...leb(importBody.length), ...importBody] : binary.subarray(s.start, s.end));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return { binary: out, initial: initial.value, maximum: maximum.value };
}

/**
 * Runs `init` (the wasm backend's initialisation) with WebAssembly.instantiate rewriting the first
 * module that defines a memory to import a shared one instead; returns that memory, or undefined when
 * no module was rewritten (turned off, or a module of another shape) and the backend keeps its own.
 */
export async function withSharedHeap(init: () => Promise<void>): Promise<WebAssembly.Memory | undefined> {
  if (!switches().sharedHeap) {
    await init();
    return undefined;
  }
  const original = WebAssembly.instantiate;
  let shared: WebAssembly.Memory | undefined;
  const instantiate = (source: BufferSource | WebAssembly.Module, imports?: WebAssembly.Imports) => {
    if (!shared && !(source instanceof WebAssembly.Module)) {
      const bytes = ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
      const rewritten = importSharedMemory(bytes);
      if (rewritten) {
        const memory = new WebAssembly.Memory({ initial: rewritten.initial, maximum: rewritten.maximum, shared: true });
        shared = memory;
        return original(rewritten.binary, { ...imports, env: { ...(imports?.env ?? {}), memory } });
      }
    }
    return original(source as BufferSource, imports);
  };
  WebAssembly.instantiate = instantiate as typeof WebAssembly.instantiate;
  try {
    await init();
  } finally {
    WebAssembly.instantiate = original;
  }
  return shared;
}
