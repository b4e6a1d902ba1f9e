import type { MethodName } from '../config/types.js';
import type { PruningMethod } from './types.js';
import { UserError } from '../errors.js';
import { l1Method } from './l1.js';
import { gopruneMethod } from './goprune.js';
import { ssrMethod } from './ssr.js';
import { dspMethod } from './dsp.js';
import { ispaspMethod } from './ispasp.js';
import { ocsprunerMethod } from './ocspruner.js';

/** Every method the engine can run, by config name. */
const METHODS: Partial<Record<MethodName, PruningMethod>> = {
  l1: l1Method,
  goprune: gopruneMethod,
  ssr: ssrMethod,
  dsp: dspMethod,
  ispasp: ispaspMethod,
  ocspruner: ocsprunerMethod,
};

export function availableMethods(): MethodName[] {
  return Object.keys(METHODS) as MethodName[];
}

export function getMethod(name: MethodName, configPath?: string): PruningMethod {
  const method = METHODS[name];
  if (!method) {
    throw new UserError(`method "${name}" is not available in this version`, { file: configPath, field: 'method', fix: `Available methods: ${availableMethods().join(', ')}` });
  }
  return method;
}
