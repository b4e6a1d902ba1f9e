import { methodInfo } from '../../../protocol/methods.js';
import { targetKind, type MethodName, type PruneConfig, type TargetKind } from '../../config/types.js';
import { UserError } from '../../errors.js';
import type { MethodContext, MethodDescriptor, OptionsSource, PruningDecision, TrainingNeed } from '../types.js';
import { readMethodOptions } from './options.js';
import { ALLOCATABLE_TARGETS } from '../../prune/allocate.js';

export interface MethodDefinition<Options extends object, Name extends MethodName> {
  name: Name;
  training: TrainingNeed;
  targets: readonly TargetKind[];
  /** The method prunes each group to the count the allocation sets (see MethodDescriptor.takesGroupCounts). */
  takesGroupCounts?: boolean;
  ignoresTarget?: (options: Options) => boolean;
  /** Options that follow from others once merged (e.g. a default that is another option's value). */
  settle?: (options: Options, section: Record<string, unknown>) => Options;
  run: (ctx: MethodContext, options: Options) => Promise<PruningDecision>;
}

/**
 * A method's descriptor: its data need from the protocol's method list, its options from the
 * schema. The options' type is the one `run` takes.
 */
export function defineMethod<Options extends object, Name extends MethodName>(definition: MethodDefinition<Options, Name>): MethodDescriptor<Options, Name> {
  const { name, settle } = definition;
  const options = (config: OptionsSource): Options => {
    const merged = readMethodOptions<Options>(name, config);
    return settle ? settle(merged, config[name] ?? {}) : merged;
  };
  return {
    name,
    needsData: methodInfo(name).needsData,
    training: definition.training,
    targets: definition.targets,
    takesGroupCounts: definition.takesGroupCounts ?? false,
    ignoresTarget: definition.ignoresTarget,
    defaults: Object.freeze(options({ configPath: '' })),
    options,
    run: (ctx) => definition.run(ctx, options(ctx.config)),
  };
}

/** "a", "a or b", "a, b or c". */
function either(values: readonly string[]): string {
  return values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

/**
 * Whether a config gives the method what it needs (data, a training phase, a target kind it prunes
 * to, valid options), checked once before the session loads data or trains. Throws a UserError naming the field.
 */
export function checkMethodFits(method: MethodDescriptor, config: PruneConfig): void {
  const file = config.configPath;
  const { label } = methodInfo(method.name);
  if (method.needsData && !config.data) {
    throw new UserError(`method "${method.name}" trains and needs data`, { file, field: 'data', fix: 'Add a "data" section, e.g. {"format": "builtin", "name": "mnist"}' });
  }
  if (method.training === 'required' && !(config.train && config.train.epochs > 0)) {
    throw new UserError(`${label} prunes inside its training and needs a "train" section with epochs`, { file, field: 'train', fix: 'Add e.g. "train": {"epochs": 60}' });
  }
  const options = method.options(config);
  const kind = targetKind(config.target);
  if (!method.targets.includes(kind) && !method.ignoresTarget?.(options)) {
    throw new UserError(`${label} prunes to a ${either(method.targets)} target, not ${kind}`, { file, field: 'target', fix: `Use e.g. "target": {"${method.targets[0]}": 0.5}` });
  }
}

/**
 * `"allocation": "sensitivity"` needs a method that prunes each group to the count it sets (and
 * reads the target: i-SpaSP's keepRatio fixes the widths), data to measure the curves on, and a
 * target that is a fraction removed.
 */
export function checkSensitivityAllocation(method: MethodDescriptor, config: PruneConfig, allocatingMethods: readonly string[]): void {
  if (config.allocation !== 'sensitivity') return;
  const file = config.configPath;
  const { label } = methodInfo(method.name);
  const kind = targetKind(config.target);
  if (!method.takesGroupCounts) {
    throw new UserError(`"allocation": "sensitivity" sets how many channels each group keeps, and ${label} sets its widths otherwise`, { file, field: 'allocation', fix: `Use "allocation": "sensitivity" with ${either(allocatingMethods)}, or "global" with ${method.name}` });
  }
  if (method.ignoresTarget?.(method.options(config))) {
    throw new UserError(`"allocation": "sensitivity" shares the target between groups, and ${label}'s options fix every width without it`, { file, field: 'allocation', fix: `Remove the option that fixes the widths (e.g. ${method.name}.keepRatio), or use "allocation": "global"` });
  }
  if (!config.data) {
    throw new UserError('"allocation": "sensitivity" measures each group on data, and the config has no "data"', { file, field: 'allocation', fix: 'Add a "data" section with validation samples, or use "allocation": "global"' });
  }
  if (!(ALLOCATABLE_TARGETS as readonly string[]).includes(kind)) {
    throw new UserError(`"allocation": "sensitivity" meets a ${either(ALLOCATABLE_TARGETS)} target, not ${kind}`, { file, field: 'target', fix: 'Use e.g. "target": {"flopsReduction": 0.5}' });
  }
}
