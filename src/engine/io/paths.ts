import { realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { UserError } from '../errors.js';

/** True when `child` lies strictly inside `parent` (both absolute, already canonical). */
export function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/**
 * The real path of `path`, resolving symlinks in the part that exists; the missing tail is
 * appended as written. Lets folders that do not exist yet be compared with real ones.
 */
export function canonicalPath(path: string): string {
  let existing = resolve(path);
  const missing: string[] = [];
  for (;;) {
    try {
      const real = realpathSync.native(existing);
      return missing.length ? join(real, ...missing.reverse()) : real;
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return resolve(path);
      missing.push(basename(existing));
      existing = parent;
    }
  }
}

function modelFolderOf(inputModelPath: string): string {
  const resolved = resolve(inputModelPath);
  try {
    if (statSync(resolved).isDirectory()) return resolved;
  } catch { /* a missing input is reported by loadModel; compare its folder anyway */ }
  return dirname(resolved);
}

/**
 * Why `outDir` must not receive the pruned model, if it must not: it would overwrite the input
 * model (its own folder, or a folder containing it, which replacing would delete), or, when a
 * workspace is given, it lies outside it or is the workspace root itself.
 */
export function outputFolderProblem(inputModelPath: string, outDir: string, workspaceRoot?: string): { message: string; fix: string } | undefined {
  const modelDir = canonicalPath(modelFolderOf(inputModelPath));
  const out = canonicalPath(outDir);
  const fix = `Choose another output folder, e.g. ${basename(modelDir)}-pruned next to it`;
  if (out === modelDir) return { message: `output folder is the input model's own folder (${modelDir}); saving would overwrite the input model`, fix };
  if (isInside(modelDir, out)) return { message: `output folder contains the input model (${modelDir}); replacing it would delete the input model`, fix };
  if (workspaceRoot !== undefined) {
    const root = canonicalPath(workspaceRoot);
    if (out === root) return { message: 'output folder is the workspace root; saving replaces the whole output folder', fix: 'Choose a subfolder of the workspace, e.g. pruned/' };
    if (!isInside(out, root)) return { message: `output folder is outside the workspace (${root})`, fix: 'Choose an output folder inside the workspace' };
  }
  return undefined;
}

/** Throws outputFolderProblem's problem as a UserError naming the folder. */
export function assertOutputSafe(inputModelPath: string, outDir: string, workspaceRoot?: string): void {
  const problem = outputFolderProblem(inputModelPath, outDir, workspaceRoot);
  if (problem) throw new UserError(problem.message, { file: outDir, fix: problem.fix });
}

/** The bytes of a single-file model (Keras, ONNX); missing, unreadable and empty files fail in one line. */
export async function readModelFile(modelPath: string, emptyFix: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(resolve(modelPath));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'model file not found' : `model file cannot be read (${code ?? String((err as Error)?.message ?? err).split('\n')[0]})`, { file: modelPath, fix: 'Check the path' });
  }
  if (bytes.length === 0) throw new UserError('is empty', { file: modelPath, fix: emptyFix });
  return bytes;
}
