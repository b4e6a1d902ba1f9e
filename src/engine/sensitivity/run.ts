import { basename, dirname, join } from 'node:path';
import { backendCacheDir, initBackend } from '../backend/index.js';
import type { PruneConfig } from '../config/types.js';
import { loadDataset } from '../data/index.js';
import type { EngineEvent, SensitivityDoneEvent, ErrorEvent, SensitivityRequest } from '../../protocol/events.js';
import { loadConfig } from '../config/index.js';
import { UserError } from '../errors.js';
import { assertInsideWorkspace } from '../session/confine.js';
import { errorEvent } from '../session/error-event.js';
import { loadModel, writeFileAtomic } from '../io/index.js';
import { analyzeSensitivity, type SensitivityOptions, type SensitivityReport } from './index.js';

export interface SensitivityRun {
  report: SensitivityReport;
  /** Where the report was written. */
  file: string;
  backend: string;
}

/**
 * Where a config's sensitivity report goes: beside the config, `<name>.sensitivity.json` (not in
 * the output folder, which a pruning session replaces as a whole and refuses when it holds other files).
 */
export function sensitivityReportPath(configPath: string): string {
  return join(dirname(configPath), `${basename(configPath).replace(/(\.prune)?\.json$/i, '')}.sensitivity.json`);
}

/** Where sensitivity results are cached: .prunelens/cache/sensitivity beside the config. */
export function defaultCacheDir(configPath: string): string {
  // Beside the config, inside the workspace: PruneLens writes nowhere else.
  return join(dirname(configPath), '.prunelens', 'cache', 'sensitivity');
}

/** Sensitivity of the config's model on the config's data: loads both, analyses, writes the report atomically. */
export async function runSensitivity(config: PruneConfig, options: Pick<SensitivityOptions, 'ratios' | 'samples' | 'layerAtATime' | 'signal' | 'onPoint' | 'cacheDir'> & {
  /** As `SensitivityOptions.onStart`, with the backend the analysis runs on. */
  onStart?: (start: Parameters<NonNullable<SensitivityOptions['onStart']>>[0] & { backend: string }) => void;
}): Promise<SensitivityRun> {
  if (!config.data) {
    throw new UserError('sensitivity analysis measures the model on data, and the config has no "data"', {
      file: config.configPath, field: 'data', fix: 'Point "data" at validation samples (labelled for top-1, unlabelled for agreement with the dense model)' });
  }
  const backend = await initBackend(config.backend, { cacheDir: backendCacheDir(config.configPath) });
  const loaded = await loadModel(config.model);
  const model = loaded.model;
  try {
    // Data for an ONNX model holds samples as the ONNX graph takes them, [C, H, W]: transposed once at load.
    const data = await loadDataset(config.data, config.configPath, {
      inputShape: model.inputs[0].shape.slice(1) as number[],
      classes: model.outputs[0].shape[model.outputs[0].shape.length - 1] as number,
      channelsFirst: Boolean(loaded.onnx),
      outputShapes: model.outputs.map((o) => o.shape.slice(1)),
    }, config.seed);
    const { onStart } = options;
    const report = await analyzeSensitivity(model, data, {
      ...options,
      onStart: onStart && ((start) => onStart({ ...start, backend })),
      exclude: config.exclude,
      objective: { config },
      modelPath: loaded.path,
      modelName: basename(loaded.path) === 'model.json' ? basename(loaded.dir) : basename(loaded.path),
    });
    const file = sensitivityReportPath(config.configPath);
    await writeFileAtomic(file, JSON.stringify(report, null, 2) + '\n');
    return { report, file, backend };
  } finally {
    model.dispose();
  }
}

/**
 * A sensitivity request from the editor, as events: `sensitivityStart`, a `sensitivityPoint` per
 * point, then `sensitivityDone` or `error` (cancelled through `signal`). Never throws.
 */
export async function sensitivityToEvents(request: SensitivityRequest, emit: (event: EngineEvent) => void, signal?: AbortSignal): Promise<SensitivityDoneEvent | ErrorEvent> {
  const startedAt = Date.now();
  try {
    const config = loadConfig(request.configPath);
    if (request.workspaceRoots?.length) assertInsideWorkspace(config, request.workspaceRoots);
    const run = await runSensitivity(config, {
      ratios: request.ratios,
      samples: request.samples,
      layerAtATime: request.layerAtATime,
      signal,
      cacheDir: defaultCacheDir(config.configPath),
      onStart: ({ groups, cached, backend, ...head }) => emit({
        type: 'sensitivityStart',
        configPath: config.configPath,
        model: head.model,
        mode: head.mode,
        metric: head.metric,
        samples: head.samples,
        ratios: head.ratios,
        dense: head.dense,
        latency: head.latency,
        entries: groups.map(({ points: _points, ...info }) => info),
        backend,
        cached: cached || undefined,
      }),
      onPoint: ({ points: _points, ...entry }, point) => emit({ type: 'sensitivityPoint', entry, point }),
    });
    const done: SensitivityDoneEvent = { type: 'sensitivityDone', report: run.report, file: run.file, wallTimeMs: Date.now() - startedAt };
    emit(done);
    return done;
  } catch (err) {
    const error = errorEvent(err);
    emit(error);
    return error;
  }
}
