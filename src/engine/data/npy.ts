import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { UserError } from '../errors.js';

export type NpyArray =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'float64'; shape: number[]; data: Float64Array }
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int8'; shape: number[]; data: Int8Array }
  | { dtype: 'int16'; shape: number[]; data: Int16Array }
  | { dtype: 'uint16'; shape: number[]; data: Uint16Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'uint32'; shape: number[]; data: Uint32Array }
  | { dtype: 'int64'; shape: number[]; data: Float64Array }
  | { dtype: 'bool'; shape: number[]; data: Uint8Array };

const DTYPES: Record<string, { dtype: NpyArray['dtype']; bytes: number }> = {
  f4: { dtype: 'float32', bytes: 4 }, f8: { dtype: 'float64', bytes: 8 },
  u1: { dtype: 'uint8', bytes: 1 }, i1: { dtype: 'int8', bytes: 1 }, b1: { dtype: 'bool', bytes: 1 },
  i2: { dtype: 'int16', bytes: 2 }, u2: { dtype: 'uint16', bytes: 2 },
  i4: { dtype: 'int32', bytes: 4 }, u4: { dtype: 'uint32', bytes: 4 }, i8: { dtype: 'int64', bytes: 8 },
};

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** Reads a NumPy .npy file (format versions 1–3, little-endian, C order). */
export function readNpy(file: string): NpyArray {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'file not found' : `cannot read the file (${code ?? String(err)})`, {
      file, fix: 'Check the path in the "data" section of the config' });
  }
  return parseNpy(buf, file);
}

export interface NpyHeader {
  shape: number[];
  dtype: NpyArray['dtype'];
  /** Bytes per element. */
  bytes: number;
  /** Offset of the first data byte. */
  dataStart: number;
}

/** Reads only the header of a .npy file (its shape and dtype), however large the array. */
export async function readNpyHeader(file: string): Promise<NpyHeader> {
  const handle = await open(file, 'r');
  try {
    const prefix = Buffer.alloc(12);
    const { bytesRead } = await handle.read(prefix, 0, 12, 0);
    const headerLength = bytesRead >= 10 ? (prefix[6] === 1 ? prefix.readUInt16LE(8) : bytesRead >= 12 ? prefix.readUInt32LE(8) : 0) : 0;
    const head = Buffer.alloc(Math.min(bytesRead, 12) + headerLength);
    const read = await handle.read(head, 0, head.length, 0);
    return parseNpyHeader(head.subarray(0, read.bytesRead), file);
  } finally {
    await handle.close();
  }
}

/** Parses and checks a .npy header: version 1–3, little-endian, C order, a supported dtype. */
export function parseNpyHeader(buf: Buffer, file: string): NpyHeader {
  const notNpy = (why: string) => new UserError(`not a valid .npy file: ${why}`, { file, fix: 'Save the array with numpy.save(path, array)' });
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw notNpy('the \\x93NUMPY signature is missing');
  const major = buf[6];
  if (major < 1 || major > 3) throw notNpy(`unsupported format version ${major}.${buf[7]}`);
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLength;
  if (dataStart > buf.length) throw notNpy('the header is truncated');
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart);
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw notNpy(`cannot parse the header ${header.trim()}`);
  if (fortran === 'True') {
    throw new UserError('the array is stored in Fortran (column-major) order', { file, fix: 'Save numpy.ascontiguousarray(array) instead' });
  }
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw notNpy(`bad shape (${shapeText})`);
  const order = descr[0];
  const code = /^[<>|=]/.test(descr) ? descr.slice(1) : descr;
  const type = DTYPES[code];
  if (!type) {
    throw new UserError(`unsupported dtype '${descr}'`, { file, fix: 'Save inputs as float32 or uint8 and labels as an integer type, e.g. array.astype("float32")' });
  }
  if (order === '>' && type.bytes > 1) {
    throw new UserError(`the array is big-endian ('${descr}')`, { file, fix: `Save array.astype('<${code}') instead` });
  }
  return { shape, dtype: type.dtype, bytes: type.bytes, dataStart };
}

export function parseNpy(buf: Buffer, file: string): NpyArray {
  const { shape, dtype, bytes: elementBytes, dataStart } = parseNpyHeader(buf, file);
  const count = shape.reduce((a, b) => a * b, 1);
  const byteLength = count * elementBytes;
  if (buf.length - dataStart < byteLength) {
    throw new UserError(`the file is truncated: shape (${shape.join(', ')}) needs ${byteLength} bytes of data, found ${buf.length - dataStart}`, {
      file, fix: 'Save the array again' });
  }
  // Copy so the typed array is aligned whatever the header length.
  const bytes = buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + dataStart + byteLength);
  switch (dtype) {
    case 'float32': return { dtype: 'float32', shape, data: new Float32Array(bytes) };
    case 'float64': return { dtype: 'float64', shape, data: new Float64Array(bytes) };
    case 'uint8': return { dtype: 'uint8', shape, data: new Uint8Array(bytes) };
    case 'bool': return { dtype: 'bool', shape, data: new Uint8Array(bytes) };
    case 'int8': return { dtype: 'int8', shape, data: new Int8Array(bytes) };
    case 'int16': return { dtype: 'int16', shape, data: new Int16Array(bytes) };
    case 'uint16': return { dtype: 'uint16', shape, data: new Uint16Array(bytes) };
    case 'int32': return { dtype: 'int32', shape, data: new Int32Array(bytes) };
    case 'uint32': return { dtype: 'uint32', shape, data: new Uint32Array(bytes) };
    case 'int64': {
      const wide = new BigInt64Array(bytes);
      const data = new Float64Array(count);
      for (let i = 0; i < count; i++) data[i] = Number(wide[i]);
      return { dtype: 'int64', shape, data };
    }
  }
}

/** Writes a little-endian, C-order .npy (version 1) file's bytes; used to export arrays. */
export function encodeNpy(data: Float32Array | Uint8Array | Int32Array, shape: number[]): Buffer {
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '|u1';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  MAGIC.copy(prefix, 0);
  prefix[6] = 1; prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}
