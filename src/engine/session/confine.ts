import type { PruneConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { dirname } from 'node:path';
import { canonicalPath, isInside } from '../io/index.js';
import { splitGlob } from '../data/glob.js';

/**
 * Sessions started from an editor read and write only inside its workspace folders: the model,
 * the data, the output and the config (whose folder holds the caches) must lie in one of `roots`
 * (symbolic links resolved), and the output
 * may not be a workspace folder itself, which saving would replace.
 */
export function assertInsideWorkspace(config: PruneConfig, roots: readonly string[]): void {
  const canonicalRoots = roots.map(canonicalPath);
  const inside = (path: string) => canonicalRoots.some((root) => isInside(canonicalPath(path), root));
  const check = (path: string, field: string) => {
    if (!inside(path)) {
      throw new UserError(`${path} is outside the workspace`, { file: config.configPath, field, fix: 'Keep the model, its data and the output folder inside the workspace' });
    }
  };
  check(config.model, 'model');
  const data = config.data;
  if (data?.format === 'npy') {
    check(data.x, 'data.x');
    const checkTargets = (y: string | string[] | undefined, field: string) => {
      if (Array.isArray(y)) y.forEach((file, k) => check(file, `${field}[${k}]`));
      else if (y !== undefined) check(y, field);
    };
    checkTargets(data.y, 'data.y');
    if (data.xVal) check(data.xVal, 'data.xVal');
    checkTargets(data.yVal, 'data.yVal');
  } else if (data?.format === 'imagefolder') {
    check(data.path, 'data.path');
    if (data.validationPath) check(data.validationPath, 'data.validationPath');
  } else if (data?.format === 'images') {
    // The loader reads only regular files below the glob's base folder (no symbolic links).
    check(splitGlob(data.glob, dirname(config.configPath)).base, 'data.glob');
  }
  check(config.output, 'output');
  // Caches (backend choice, latency table, sensitivity curves) go to .prunelens/ beside the config.
  if (!inside(config.configPath)) {
    throw new UserError('the config file is outside the workspace', { file: config.configPath, fix: 'Keep the config inside the workspace: PruneLens writes its caches beside it' });
  }
}
