import type { MethodName, PruneConfig } from '../config/types.js';
import type { MethodDescriptor } from './types.js';
import { UserError } from '../errors.js';
import { l1Method } from './l1.js';
import { gopruneMethod } from './goprune.js';
import { ssrMethod } from './ssr.js';
import { dspMethod } from './dsp.js';
import { ispaspMethod } from './ispasp.js';
import { ocsprunerMethod } from './ocspruner.js';

import { checkMethodFits as checkFits, checkSensitivityAllocation } from './shared/descriptor.js';
/** The magnitude baseline's plan: what a dry run shows the target means, without training. */
export { magnitudePlan } from './l1.js';

/** Every method's descriptor, keyed by its name in the protocol's method list. */
const METHODS = [l1Method, gopruneMethod, ssrMethod, dspMethod, ispaspMethod, ocsprunerMethod] as const;
const BY_NAME = new Map<string, MethodDescriptor>(METHODS.map((method) => [method.name, method]));

/** Fails to compile when a method of the protocol's list has no descriptor here. */
type Missing = Exclude<MethodName, (typeof METHODS)[number]['name']>;
const EVERY_METHOD_HAS_A_DESCRIPTOR: [Missing] extends [never] ? true : Missing = true;
void EVERY_METHOD_HAS_A_DESCRIPTOR;

export function availableMethods(): MethodName[] {
  return METHODS.map((method) => method.name);
}

export function getMethod(name: MethodName, configPath?: string): MethodDescriptor {
  const method = BY_NAME.get(name);
  if (!method) {
    throw new UserError(`method "${name}" is not available in this version`, { file: configPath, field: 'method', fix: `Available methods: ${availableMethods().join(', ')}` });
  }
  return method;
}

/** Methods that prune each group to the count `"allocation"` (global, uniform, sensitivity) sets. */
export function allocatingMethods(): MethodName[] {
  return METHODS.filter((method) => method.takesGroupCounts).map((method) => method.name);
}

/**
 * Whether a config gives the method what it needs (data, a training phase, a target kind it prunes
 * to, valid options, and what `"allocation": "sensitivity"` needs), checked once before the session
 * loads data or trains. Throws a UserError naming the field.
 */
export function checkMethodFits(method: MethodDescriptor, config: PruneConfig): void {
  checkFits(method, config);
  checkSensitivityAllocation(method, config, allocatingMethods());
}
