import type { MethodName } from '../../config/types.js';
import { methodSectionDefaults, methodSectionProblems } from '../../config/load.js';
import { UserError } from '../../errors.js';
import type { OptionsSource } from '../types.js';

/**
 * A method's config section over the schema's defaults, validated against the schema: a wrong
 * type, a value out of range or an unknown option is a UserError naming the file and the field,
 * worded as loading the config file words it.
 */
export function readMethodOptions<Options extends object>(method: MethodName, config: OptionsSource): Options {
  const section = config[method];
  const problems = methodSectionProblems(method, section ?? {});
  if (problems.length > 0) {
    const first = problems[0];
    throw new UserError(first.message, { file: config.configPath, field: first.path.join('.') });
  }
  return { ...methodSectionDefaults(method), ...section } as Options;
}
