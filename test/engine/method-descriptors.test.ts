import { test } from 'node:test';
import assert from 'node:assert/strict';
import schema from '../../schemas/prune-config.schema.json';
import { METHOD_INFO, METHOD_NAMES, methodInfo, methodLabel } from '../../src/protocol/methods.js';
import { UserError } from '../../src/engine/errors.js';
import { checkMethodFits, getMethod } from '../../src/engine/methods/index.js';
import { TARGET_KINDS, type PruneConfig } from '../../src/engine/config/types.js';
import { loadConfig } from '../../src/engine/config/index.js';
import { executeSession } from '../../src/engine/session/session.js';
import type { EngineEvent } from '../../src/protocol/events.js';
import { makeWorkspace, tinyTrainingConfig } from '../helpers/fixtures.js';

type SchemaNode = { enum?: unknown[]; markdownEnumDescriptions?: unknown[]; properties?: Record<string, SchemaNode>; default?: unknown };
const properties = (schema as unknown as { properties: Record<string, SchemaNode> }).properties;

test("the method list is the schema's method enum, in order, each with a section of options", () => {
  assert.deepEqual(properties.method.enum, [...METHOD_NAMES]);
  assert.equal(properties.method.markdownEnumDescriptions?.length, METHOD_NAMES.length, 'one editor description per method');
  for (const name of METHOD_NAMES) assert.ok(properties[name]?.properties, `schema section "${name}"`);
  assert.deepEqual(METHOD_INFO.map((m) => m.id), [...METHOD_NAMES]);
  for (const info of METHOD_INFO) assert.ok(info.label && info.description.length > 10, info.id);
  assert.equal(methodLabel('ispasp'), 'i-SpaSP');
  assert.equal(methodLabel('dense'), 'dense', 'an id outside the list reads as itself');
});

/** Every option a method runs with when its config section is empty: the values the demo's table was measured with. */
const PINNED: Record<string, Record<string, unknown>> = {
  l1: {},
  goprune: { p: 2 / 3, lambda: 5e-3, beta: 1.5e-3, rho1: 1.5e-3, rho2: 1.5e-3, betaGrowth: 1, betaMax: 1, lambdaWarmupEpochs: 0, tolerance: 0, groupSlices: 'producer', adoptAuxiliary: false },
  ssr: { regularizer: 'l21', lambda: 0.15, layerLambda: {}, rho: 1, rhoGrowth: 1, rhoMax: 1, schedule: 'global', groupSlices: 'producer', adoptAuxiliary: false },
  dsp: { groups: 4, temperature: 0.5, finalTemperature: 0.5, regularization: 2e-3, thetaLearningRate: 1e-3, thetaEpsilon: 1e-12, thetaUpdateEvery: 1, warmupEpochs: 0, filterPruning: true, skipStem: true, skipShortcut: true, skipPointwise: false, layerCostFlops: 0, realisation: 'measured' },
  ispasp: { iterations: 20, candidateFactor: 2, calibrationSamples: 1280, batchSize: 256, importance: 'signed', threshold: 'contribution', includeNorm: true, blockFinetuneEpochs: 1, blockFinetuneLearningRate: 0.01 },
  ocspruner: { reg: 1e-4, regDelta: 1e-4, regInterval: 1, stabilityThreshold: 0.999, stabilityWindow: 3, layerPruneLimit: 0.75, layerLimitFactor: 1, flopsAware: true },
};

/** Options with no default in the schema: derived from another option, or absent unless set. */
const WITHOUT_DEFAULT: Record<string, string[]> = { dsp: ['finalTemperature'], ispasp: ['keepRatio'], ssr: ['updateEvery'], ocspruner: ['monitorStartEpoch', 'slStartEpoch', 'slEndEpoch'] };

function schemaDefaults(name: string): Record<string, unknown> {
  return Object.fromEntries(Object.entries(properties[name].properties ?? {}).filter(([, p]) => 'default' in p).map(([key, p]) => [key, p.default]));
}

const configWith = (sections: Record<string, unknown>) => ({ configPath: '/work/run.prune.json', ...sections }) as unknown as PruneConfig;

test("every option's default is the schema's, for every method, and an empty section runs with the pinned values", () => {
  for (const name of METHOD_NAMES) {
    const schemaOptions = Object.keys(properties[name].properties ?? {}).sort();
    const withDefault = schemaDefaults(name);
    assert.deepEqual([...Object.keys(withDefault), ...(WITHOUT_DEFAULT[name] ?? [])].sort(), schemaOptions, `${name}: every schema option has a default or is listed as derived/optional`);
    const method = getMethod(name);
    const defaults = method.defaults as Record<string, unknown>;
    for (const [key, value] of Object.entries(withDefault)) assert.deepEqual(defaults[key], value, `${name}.${key}: the descriptor's default is the schema's`);
    for (const key of Object.keys(defaults)) assert.ok(key in properties[name].properties!, `${name}.${key} is a schema option`);
    assert.deepEqual(defaults, PINNED[name], `${name}: the descriptor's defaults`);
    assert.deepEqual(method.options(configWith({})), PINNED[name], `${name}: options of a config without the section`);
    assert.deepEqual(method.options(configWith({ [name]: {} })), PINNED[name], `${name}: options of an empty section`);
  }
});

/** One bad value per method; the error must name the method's section and the field. */
const BAD_VALUES: Record<string, { section: Record<string, unknown>; field: string }[]> = {
  goprune: [{ section: { p: 1.5 }, field: 'goprune.p' }, { section: { lambda: 'big' }, field: 'goprune.lambda' }, { section: { lamda: 0.1 }, field: 'goprune.lamda' }],
  ssr: [{ section: { regularizer: 'l1' }, field: 'ssr.regularizer' }, { section: { rho: 0 }, field: 'ssr.rho' }, { section: { layerLambda: { conv1: -1 } }, field: 'ssr.layerLambda.conv1' }],
  dsp: [{ section: { groups: 0 }, field: 'dsp.groups' }, { section: { temperature: 0 }, field: 'dsp.temperature' }, { section: { skipStem: 'yes' }, field: 'dsp.skipStem' }],
  ispasp: [{ section: { iterations: 0 }, field: 'ispasp.iterations' }, { section: { threshold: 'energy' }, field: 'ispasp.threshold' }, { section: { keepRatio: 1.5 }, field: 'ispasp.keepRatio' }],
  ocspruner: [{ section: { stabilityWindow: 1 }, field: 'ocspruner.stabilityWindow' }, { section: { flopsAware: 1 }, field: 'ocspruner.flopsAware' }, { section: { reg: -1 }, field: 'ocspruner.reg' }],
  l1: [{ section: { p: 1 }, field: 'l1.p' }],
};

test("each method's options are validated in one place: a bad value is a UserError naming the file and the field", () => {
  for (const name of METHOD_NAMES) {
    for (const { section, field } of BAD_VALUES[name]) {
      assert.throws(() => getMethod(name).options(configWith({ [name]: section })), (err: unknown) => {
        assert.ok(err instanceof UserError, `${field}: ${String(err)}`);
        assert.equal(err.field, field);
        assert.equal(err.file, '/work/run.prune.json');
        return true;
      }, `${JSON.stringify(section)} is refused`);
    }
  }
});

test('every method has a descriptor under its own name, with the data need of the method list', () => {
  for (const name of METHOD_NAMES) {
    const method = getMethod(name);
    assert.equal(method.name, name);
    assert.equal(method.needsData, methodInfo(name).needsData, name);
  }
});

const fitting = (sections: Partial<PruneConfig>): PruneConfig => ({
  ...configWith({}),
  target: { flopsReduction: 0.5 },
  data: { format: 'synthetic', samples: 10, classes: 2 },
  train: { epochs: 1, batchSize: 8, learningRate: 0.01, momentum: 0.9, weightDecay: 0, optimizer: 'sgd', schedule: 'constant' },
  ...sections,
});

/** What each method admits today: the target kinds it prunes to, and whether it runs the `train` phase (l1 never: its session's progress counts no training epochs). */
const ADMITS: Record<string, { targets: string[]; training: 'none' | 'optional' | 'required' }> = {
  l1: { targets: [...TARGET_KINDS], training: 'none' },
  goprune: { targets: [...TARGET_KINDS], training: 'optional' },
  ssr: { targets: [...TARGET_KINDS], training: 'optional' },
  dsp: { targets: ['flopsReduction'], training: 'optional' },
  ispasp: { targets: ['flopsReduction', 'paramsReduction', 'latencyReduction', 'channelRatio'], training: 'optional' },
  ocspruner: { targets: ['flopsReduction', 'latencyReduction'], training: 'required' },
};

test('a config is checked against the descriptor once: data, a training phase, the target kind, the options', () => {
  const fieldOf = (config: PruneConfig, name: string): string | undefined => {
    try {
      checkMethodFits(getMethod(name as never), config);
      return undefined;
    } catch (err) {
      assert.ok(err instanceof UserError, String(err));
      assert.equal(err.file, '/work/run.prune.json');
      return err.field;
    }
  };
  for (const name of METHOD_NAMES) {
    const method = getMethod(name);
    assert.equal(method.training, ADMITS[name].training, name);
    assert.equal(fieldOf(fitting({ method: name }), name), undefined, `${name} fits a FLOPs target with data and training`);
    assert.equal(fieldOf(fitting({ method: name, data: undefined, train: undefined }), name), method.needsData ? 'data' : undefined, `${name} without data`);
    const noEpochs = fitting({ method: name, train: { ...fitting({}).train!, epochs: 0 } });
    assert.equal(fieldOf(noEpochs, name), ADMITS[name].training === 'required' ? 'train' : undefined, `${name} with train.epochs 0`);
    for (const kind of TARGET_KINDS) {
      const target = { [kind]: 0.5 } as unknown as PruneConfig['target'];
      assert.equal(fieldOf(fitting({ method: name, target }), name), ADMITS[name].targets.includes(kind) ? undefined : 'target', `${name} with a ${kind} target`);
    }
    assert.equal(fieldOf(fitting({ method: name, [name]: { unknownOption: 1 } }), name), `${name}.unknownOption`);
  }
});

test('a session refuses a target its method does not prune to before it loads data or trains', async () => {
  const ws = await makeWorkspace();
  const events: EngineEvent[] = [];
  const config = loadConfig(ws.writeConfig({ ...tinyTrainingConfig, method: 'dsp', target: { paramsReduction: 0.4 } }));
  const result = await executeSession(config, (e) => events.push(e));
  assert.equal(result.type, 'error');
  if (result.type !== 'error') return;
  assert.equal(result.field, 'target');
  assert.match(result.message, /target: DSP prunes to a flopsReduction target, not paramsReduction\. Use e\.g\. "target": \{"flopsReduction": 0\.5\}/);
  assert.ok(!events.some((e) => e.type === 'phase' && e.phase === 'evaluate'), 'no evaluation or training ran');
});
