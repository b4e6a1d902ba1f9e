import type * as H5 from 'h5wasm';
import { UserError } from '../../errors.js';

type Hdf5Library = typeof import('h5wasm');

let library: Promise<Hdf5Library> | undefined;
/** True while PruneLens calls into HDF5: the C library's diagnostics then go to `diagnostics`, not stderr. */
let quiet = false;
const diagnostics: string[] = [];
let nextFileId = 0;

/**
 * h5wasm, loaded once. Its WebAssembly module binds `console.error` when it is instantiated, so a
 * forwarder is in place then: it keeps the HDF5 library's error stacks (printed on every failed
 * open or read) off the user's terminal while PruneLens is calling HDF5, and passes anything
 * else through.
 */
export function hdf5Library(): Promise<Hdf5Library> {
  library ??= (async () => {
    const original = console.error;
    const forwarder = (...args: unknown[]): void => {
      if (quiet) diagnostics.push(args.map(String).join(' '));
      else original.apply(console, args);
    };
    console.error = forwarder;
    try {
      const h5 = await import('h5wasm');
      await h5.ready;
      return h5;
    } finally {
      if (console.error === forwarder) console.error = original;
    }
  })();
  return library;
}

/** Runs HDF5 calls with the library's diagnostics captured; returns what they printed on failure. */
function withDiagnostics<T>(run: () => T): T {
  quiet = true;
  diagnostics.length = 0;
  try {
    return run();
  } finally {
    quiet = false;
  }
}

const GENERIC_FAILURES = /^(unable to (synchronously )?open (file|object)|open failed|can't (open|get|read) .*|unable to read (attribute|dataset|data)|.*failed)$/i;

/**
 * The HDF5 library's reason for the last failure, in one line: the sizes of a truncated file, or
 * the outermost specific description on its error stack ("unable to read superblock").
 */
function failureReason(): string | undefined {
  const descriptions = diagnostics.join('\n').split('\n')
    .map((line) => /#\d+: .* in [\w.]+\(\): (.+)$/.exec(line)?.[1]?.trim())
    .filter((d): d is string => !!d);
  const truncated = descriptions.map((d) => /truncated file: eof = (\d+).*stored_eof = (\d+)/.exec(d)).find((m) => m);
  if (truncated) return `the file is truncated (${truncated[1]} of ${truncated[2]} bytes)`;
  const specific = descriptions.find((d) => !GENERIC_FAILURES.test(d));
  return specific ? `the file is corrupt (HDF5: ${specific})` : descriptions.length > 0 ? 'the file is corrupt' : undefined;
}

export type Hdf5Group = H5.Group;
export type Hdf5Dataset = H5.Dataset;
type Hdf5Node = H5.Group | H5.Dataset;

const RESAVE = 'Save the model again with Keras (model.save)';

/**
 * An HDF5 file opened read-only from bytes in memory. Every read names the file and turns the
 * HDF5 library's failure into one line; `close()` frees the memory copy.
 */
export class Hdf5File {
  private constructor(
    readonly root: H5.File,
    /** The HDF5 file's name inside the user's file (`model.weights.h5` in a .keras archive); undefined when it is the user's file. */
    readonly inner: string | undefined,
    private readonly file: string,
    private readonly release: () => void,
  ) {}

  /** Opens HDF5 bytes; `file` is the user's file, named in errors, and `inner` the HDF5 file's name inside it, if any. */
  static async open(bytes: Uint8Array, file: string, inner?: string): Promise<Hdf5File> {
    const h5 = await hdf5Library();
    const fs = h5.Module.FS;
    const memPath = `/prunelens-${process.pid}-${nextFileId++}.h5`;
    fs.writeFile(memPath, bytes);
    // h5wasm reports a failed open as a file id of -1, with the reason on the library's error stack.
    const root = withDiagnostics(() => {
      try {
        return new h5.File(memPath, 'r');
      } catch {
        return undefined;
      }
    });
    if (!root || root.file_id < 0n) {
      fs.unlink(memPath);
      throw new UserError(`${inner ? `${inner} ` : ''}cannot be opened as HDF5: ${failureReason() ?? 'the file is truncated or corrupt'}`, { file, fix: RESAVE });
    }
    return new Hdf5File(root, inner, file, () => {
      withDiagnostics(() => root.close());
      fs.unlink(memPath);
    });
  }

  close(): void {
    this.release();
  }

  /** `model.weights.h5: ` inside an archive, nothing for the user's own file. */
  get prefix(): string {
    return this.inner ? `${this.inner}: ` : '';
  }

  private read<T>(what: string, run: () => T): T {
    try {
      return withDiagnostics(run);
    } catch {
      throw new UserError(`${this.prefix}${what} cannot be read: ${failureReason() ?? 'the file is truncated or corrupt'}`, { file: this.file, fix: RESAVE });
    }
  }

  /** The group or dataset at `path` below `group` (default: the root), or null where there is none. */
  get(path: string, group: H5.Group = this.root): H5.Group | H5.Dataset | null {
    return this.read(path, () => {
      const found = group.get(path);
      const type = (found as { type?: string } | null)?.type;
      return type === 'Group' || type === 'Dataset' ? found as H5.Group | H5.Dataset : null;
    });
  }

  group(path: string, group: H5.Group = this.root): H5.Group | undefined {
    const found = this.get(path, group);
    return found?.type === 'Group' ? found as H5.Group : undefined;
  }

  dataset(path: string, group: H5.Group = this.root): H5.Dataset | undefined {
    const found = this.get(path, group);
    return found?.type === 'Dataset' ? found as H5.Dataset : undefined;
  }

  keys(group: H5.Group): string[] {
    return this.read(group.path, () => group.keys());
  }

  attributeNames(node: Hdf5Node): string[] {
    return this.read(`the attributes of ${node.path}`, () => Object.keys(node.attrs));
  }

  /** A string attribute; undefined where it is missing or not a string. */
  stringAttribute(node: Hdf5Node, name: string): string | undefined {
    return this.read(`attribute ${name} of ${node.path}`, () => {
      const attrs = node.attrs;
      if (!(name in attrs)) return undefined;
      const value = attrs[name].value;
      return typeof value === 'string' ? value : undefined;
    });
  }

  /** A list-of-strings attribute (Keras' `weight_names`, `layer_names`); Keras writes an empty one as an empty float64 array. */
  stringListAttribute(node: Hdf5Node, name: string): string[] | undefined {
    return this.read(`attribute ${name} of ${node.path}`, () => {
      const attrs = node.attrs;
      if (!(name in attrs)) return undefined;
      const value = attrs[name].value;
      if (typeof value === 'string') return [value];
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
      if (ArrayBuffer.isView(value) && (value as unknown as ArrayLike<unknown>).length === 0) return [];
      return undefined;
    });
  }

  /** A numeric dataset's shape and values as float32 (Keras stores float32; Normalization's count is an integer). */
  values(dataset: H5.Dataset): { shape: number[]; values: Float32Array } {
    const { shape, value } = this.read(`weight ${dataset.path}`, () => ({ shape: dataset.shape ?? [], value: dataset.value }));
    let values: Float32Array | undefined;
    if (value instanceof Float32Array) values = value;
    else if (value instanceof BigInt64Array || value instanceof BigUint64Array) values = Float32Array.from(value, (v) => Number(v));
    else if (ArrayBuffer.isView(value) && !(value instanceof DataView)) values = Float32Array.from(value as unknown as ArrayLike<number>);
    else if (typeof value === 'number') values = Float32Array.of(value);
    else if (typeof value === 'bigint') values = Float32Array.of(Number(value));
    if (!values) {
      throw new UserError(`${this.prefix}weight ${dataset.path} does not hold numbers`, { file: this.file, fix: RESAVE });
    }
    const expected = shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw new UserError(`${this.prefix}weight ${dataset.path} holds ${values.length} values for shape [${shape.join(', ')}]`, { file: this.file, fix: RESAVE });
    }
    return { shape, values };
  }
}
