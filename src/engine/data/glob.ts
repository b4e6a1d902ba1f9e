import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import picomatch from 'picomatch';
import { UserError } from '../errors.js';

/**
 * A glob pattern split into the folder it starts from (absolute) and the wildcard part matched
 * below it, e.g. `photos/**\/*.jpg` → `<config folder>/photos` and `**\/*.jpg`.
 */
export interface GlobParts { base: string; pattern: string }

const posix = (p: string) => p.split(sep).join('/');

export function splitGlob(glob: string, baseDir: string, field = 'data.glob'): GlobParts {
  const scan = picomatch.scan(posix(glob));
  if (scan.negated) throw new UserError(`the glob "${glob}" is negated (starts with !)`, { field, fix: 'Give a pattern of the images to use, e.g. "photos/**/*.jpg"' });
  if (!scan.isGlob) return { base: resolve(baseDir, glob), pattern: '' };
  if (scan.glob.split('/').includes('..')) {
    throw new UserError(`the glob "${glob}" has ".." after a wildcard`, { field, fix: 'Put ".." only before the first wildcard, e.g. "../photos/**/*.jpg"' });
  }
  return { base: resolve(baseDir, scan.base || '.'), pattern: scan.glob };
}

/** A glob resolved against `baseDir`: absolute, forward slashes, so it can be split again anywhere. */
export function resolveGlob(glob: string, baseDir: string): string {
  const { base, pattern } = splitGlob(glob, baseDir);
  return pattern ? `${posix(base)}/${pattern}` : posix(base);
}

/**
 * The regular files under the glob's base folder that its pattern matches, sorted. Symbolic links
 * and hidden entries are skipped, so every file found lies inside the base folder.
 */
export function globFiles(glob: string, baseDir: string, field = 'data.glob'): string[] {
  const { base, pattern } = splitGlob(glob, baseDir, field);
  const info = statSync(base, { throwIfNoEntry: false });
  if (!pattern) return info?.isFile() ? [base] : [];
  if (!info?.isDirectory()) throw new UserError(`folder not found: ${base}`, { field, fix: `Check the folder part of the glob "${glob}" (relative to the config)` });
  const isMatch = picomatch(pattern);
  const depth = pattern.includes('**') ? Infinity : pattern.split('/').length;
  const files: string[] = [];
  const walk = (dir: string, level: number) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory() && level < depth) walk(path, level + 1);
      else if (entry.isFile() && isMatch(posix(relative(base, path)))) files.push(path);
    }
  };
  walk(base, 1);
  return files.sort();
}
