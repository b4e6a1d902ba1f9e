import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

/**
 * Temporary names are recognisable so leftovers of a crashed session can be cleaned:
 * `.<name>.prunelens-tmp-<pid>-<hex>` for work in progress, `.<name>.prunelens-old-<pid>-<hex>`
 * for the previous output while it is being replaced.
 */
const TEMPORARY_NAME = /^\.(.+)\.prunelens-(tmp|old)-(\d+)-[0-9a-f]+$/;

export function temporarySibling(target: string, kind: 'tmp' | 'old'): string {
  return join(dirname(target), `.${basename(target)}.prunelens-${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

/** A filesystem failure while writing, as one line naming the path. */
export function writeFailure(path: string, err: unknown): UserError {
  if (err instanceof UserError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied'
    : e?.code === 'ENOSPC' ? 'no space left on the device'
    : e?.code === 'EROFS' ? 'the file system is read-only'
    : `${e?.code ?? 'error'}: ${String(e?.message ?? err).split('\n')[0]}`;
  return new UserError(`could not write (${reason})`, { file: path, fix: 'Check the folder exists, is writable and the disk has space' });
}

/** Flushes a directory entry; some platforms (Windows) cannot open folders, which is harmless. */
export async function fsyncDir(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch { /* best effort */ } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Writes a new file (failing if it exists) and flushes it to disk. */
export async function writeDurable(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `path` via a temporary sibling and a rename, so readers see the old or the new file, never half of one. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const target = resolve(path);
  const temporary = temporarySibling(target, 'tmp');
  try {
    await fs.mkdir(dirname(target), { recursive: true });
    await writeDurable(temporary, data);
    await fs.rename(temporary, target);
  } catch (err) {
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw writeFailure(target, err);
  }
  await fsyncDir(dirname(target));
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes temporaries left in `parentDir` by sessions that crashed (their process is gone).
 * A previous output caught mid-replacement is moved back into place when nothing took its
 * name. Returns the paths removed or restored.
 */
export async function removeStaleTemporaries(parentDir: string): Promise<string[]> {
  const dir = resolve(parentDir);
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return [];
  }
  const cleaned: string[] = [];
  for (const name of names) {
    const match = TEMPORARY_NAME.exec(name);
    if (!match) continue;
    const [, targetName, kind, pid] = match;
    if (processIsAlive(Number(pid))) continue;
    const path = join(dir, name);
    const target = join(dir, targetName);
    try {
      if (kind === 'old' && !(await exists(target))) await fs.rename(path, target);
      else await fs.rm(path, { recursive: true, force: true });
      cleaned.push(path);
    } catch { /* another process got there first, or it is not ours to remove */ }
  }
  return cleaned;
}
