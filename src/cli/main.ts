/**
 * `prunelens` — the PruneLens engine on the command line.
 *   prunelens analyze <model.json|model.keras|model.h5|model.onnx> [--json] [--exclude a,b] [--verify inputs.npy,outputs.npy[,outputs2.npy…]]
 *   prunelens prune <config.prune.json> [--json] [--method m] [--output dir] [--export tfjs,inference] [--dry-run]
 *   prunelens sensitivity <config.prune.json> [--json] [--ratios 0.1,0.3,0.5] [--samples N] [--layer-at-a-time]
 *   prunelens demo [--out dir] [--methods l1,goprune,...] [--quick]
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { basename, resolve } from 'node:path';
import { relaxedSimdExecArgv } from '../engine/util/relaxed-simd.js';
import type { DoneEvent, EngineEvent } from '../protocol/events.js';
import { describeError } from '../engine/errors.js';
import { errorEvent } from '../engine/session/error-event.js';
import {
  formatAccuracy, formatBytes, formatChange, formatCount, formatDuration, formatEta, formatLatency, formatLatencyRuntime, formatMetricChange, formatMetricValue, formatRecovery, formatOnnxCheck, formatPercent, formatPointChange, table,
} from '../protocol/format.js';
import { signalInfo } from '../protocol/signals.js';

const USAGE = `Usage:
  prunelens analyze <model.json|model.keras|model.h5|model.onnx> [--json] [--exclude layer1,layer2] [--backend auto|wasm|cpu|tensorflow]
                    [--verify inputs.npy,outputs.npy[,outputs2.npy...]] [--tolerance 1e-4] [--no-timing]
  prunelens prune <config.prune.json> [--json] [--method NAME] [--output DIR] [--export tfjs,inference] [--dry-run]
  prunelens sensitivity <config.prune.json> [--json] [--ratios 0.1,0.3,0.5] [--samples 512] [--layer-at-a-time]
  prunelens demo [--out DIR] [--methods l1,goprune,...] [--quick]

Options:
  --json      machine-readable output (analyze: one JSON object; prune: one JSON event per line)
  --no-timing analyze: skip timing each layer alone (batch 1, on the backend) beside its FLOPs
  --export tfjs  prune: also write a TF.js layers copy in <output>/tfjs/ (a Keras model is saved as .keras/.h5, an ONNX model as .onnx);
                 inference: a TF.js copy with batch norms folded and ReLUs fused in <output>/inference/, timed against the dense model in that form
  --verify    analyze: run the inputs through the loaded model (inference mode) and compare each output with its
              expected .npy (one per model output, in order); reports the max absolute and max relative difference
              (relative to the largest expected magnitude); exit code 3 when one exceeds --tolerance (default 1e-4)
  sensitivity: per channel group, the metric and loss on the config's data (the first --samples validation
              samples, default 512) with the group's lowest-L2 channels removed at each of --ratios (default
              0.1 to 0.9), the rest intact; --layer-at-a-time measures each producer layer alone, for comparison.
              Writes <config name>.sensitivity.json beside the config; cached by model hash
  --help      show this help
  --version   print the version`;

interface ParsedArgs {
  command?: string;
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(argv: string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  const valued = new Set(['method', 'output', 'out', 'methods', 'exclude', 'backend', 'export', 'verify', 'tolerance', 'ratios', 'samples']);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split('=', 2);
      if (inline !== undefined) flags.set(name, inline);
      else if (valued.has(name) && i + 1 < argv.length) flags.set(name, argv[++i]);
      else flags.set(name, true);
    } else positional.push(arg);
  }
  return { command: positional.shift(), positional, flags };
}

class UsageError extends Error {}

/** ", peak memory 1.52 GiB (wasm heap), batches of 32 as micro-batches of 11", or nothing. */
function memoryLine(memory: DoneEvent['memory']): string {
  if (!memory) return '';
  const split = memory.phases.filter((p) => p.microBatchSize < p.batchSize);
  const plan = split.length ? `; batches of ${split[0].batchSize} in micro-batches of ${[...new Set(split.map((p) => p.microBatchSize))].join('/')}` : '';
  return `, peak memory ${formatBytes(memory.peakBytes)} (${memory.measure})${plan}`;
}

/** Exit code of `analyze --verify` when an output differs from the expected one by more than the tolerance. */
const VERIFY_FAILED_EXIT = 3;

/** `--verify inputs.npy,outputs.npy[,…]`: the inputs file, then one expected-outputs file per model output. */
function verifyFiles(args: ParsedArgs): { inputs: string; outputs: string[] } | undefined {
  const value = args.flags.get('verify');
  if (value === undefined) return undefined;
  const files = typeof value === 'string' ? value.split(',').filter(Boolean) : [];
  if (files.length < 2) throw new UsageError('--verify needs the inputs and the expected outputs: --verify inputs.npy,outputs.npy[,outputs2.npy...]');
  return { inputs: resolve(files[0]), outputs: files.slice(1).map((f) => resolve(f)) };
}

function verifyTolerance(args: ParsedArgs): number | undefined {
  const value = args.flags.get('tolerance');
  if (value === undefined) return undefined;
  const tolerance = Number(value);
  if (typeof value !== 'string' || !Number.isFinite(tolerance) || tolerance < 0) throw new UsageError('--tolerance needs a number ≥ 0, e.g. --tolerance 1e-4');
  return tolerance;
}

const SYNTHETIC_DATA_LINE = 'Data: synthetic (pipeline check only; accuracy is meaningless). Point "data" in the config at real data.';

const TRAINING_COMMANDS = new Set(['prune', 'sensitivity', 'demo']);

/** This CLI again with more Node flags, its output the terminal's; resolves with its exit code. */
function rerunWith(flags: string[], argv: string[]): Promise<number> {
  return new Promise((resolveCode) => {
    const child = spawn(process.execPath, [...process.execArgv, ...flags, process.argv[1], ...argv], { stdio: 'inherit' });
    // Ctrl-C reaches the child through the terminal's process group; SIGTERM is passed on.
    const onInterrupt = () => {};
    const onTerminate = () => child.kill('SIGTERM');
    process.on('SIGINT', onInterrupt);
    process.on('SIGTERM', onTerminate);
    const done = (code: number) => {
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onTerminate);
      resolveCode(code);
    };
    child.on('error', (err) => { console.error(`prunelens: could not start with ${flags.join(' ')}: ${err.message}`); done(1); });
    child.on('exit', (code, signal) => done(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
  });
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const json = args.flags.has('json');
  if (args.flags.has('version')) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    console.log(require('../../package.json').version);
    return 0;
  }
  if (args.flags.has('help') || !args.command) {
    console.log(USAGE);
    return args.command || args.flags.has('help') ? 0 : 2;
  }
  // Commands that train use the relaxed-SIMD (fused multiply-add) kernels; on Node 20–21 only behind a V8
  // flag, so they run again in a child with it. analyze trains nothing and keeps its start-up time.
  if (TRAINING_COMMANDS.has(args.command)) {
    const flags = relaxedSimdExecArgv();
    if (flags.length) return rerunWith(flags, argv);
  }
  try {
    switch (args.command) {
      case 'analyze':
        return await analyzeCommand(args, json);
      case 'prune':
        return await pruneCommand(args, json);
      case 'sensitivity':
        return await sensitivityCommand(args, json);
      case 'demo': {
        const { runDemo } = await import('../engine/demo/demo.js');
        const methods = typeof args.flags.get('methods') === 'string' ? String(args.flags.get('methods')).split(',') : undefined;
        const out = typeof args.flags.get('out') === 'string' ? String(args.flags.get('out')) : undefined;
        const result = await runDemo({ outDir: out, methods, quick: args.flags.has('quick'), log: (line) => console.log(line) });
        return result.failures > 0 ? 1 : 0;
      }
      default:
        throw new UsageError(`unknown command "${args.command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`prunelens: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (json) console.log(JSON.stringify(errorEvent(err)));
    else console.error(`prunelens: ${describeError(err)}`);
    return 1;
  }
}

async function analyzeCommand(args: ParsedArgs, json: boolean): Promise<number> {
  const modelPath = args.positional[0];
  if (!modelPath) throw new UsageError('analyze needs the path of a model: model.json, .keras, .h5 or .onnx');
  const { analyzeModelFile } = await import('../engine/session/analyze.js');
  const exclude = typeof args.flags.get('exclude') === 'string' ? String(args.flags.get('exclude')).split(',') : [];
  const backend = (args.flags.get('backend') as 'auto' | 'wasm' | 'cpu' | 'tensorflow' | undefined) ?? 'cpu';
  const verify = verifyFiles(args);
  const tolerance = verifyTolerance(args);
  const result = await analyzeModelFile(resolve(modelPath), backend, exclude, verify && { ...verify, tolerance }, { timeLayers: !args.flags.has('no-timing') });
  const code = result.verify && !result.verify.passed ? VERIFY_FAILED_EXIT : 0;
  if (json) {
    const { graph: _graph, ...plain } = result;
    void _graph;
    console.log(JSON.stringify(plain));
    return code;
  }
  const timed = result.layerLatency !== undefined && !('skipped' in result.layerLatency);
  const flopsShare = (flops: number) => (result.flops > 0 ? formatPercent(flops / result.flops) : '');
  const timeCells = (l: (typeof result.layers)[number]) => (timed ? [l.ms === undefined ? '' : l.ms.toFixed(3), l.share === undefined ? '' : formatPercent(l.share)] : []);
  const rows = result.layers.map((l) => [l.name, l.type, formatCount(l.params), formatCount(l.flops), ...(timed ? [flopsShare(l.flops)] : []), ...timeCells(l), l.channels, l.status + (l.group !== undefined ? ` (group ${l.group})` : ''), l.reason ?? '']);
  console.log(table(['layer', 'type', 'params', 'FLOPs', ...(timed ? ['FLOPs %', 'ms', 'time %'] : []), 'out ch', 'status', 'reason'], rows));
  const prunable = result.groups.reduce((s, g) => s + g.channels, 0);
  console.log(`\n${result.modelName}: ${formatCount(result.params)} params, ${formatCount(result.flops)} FLOPs per sample (a multiply-add counts as 2)`);
  console.log(`${result.groups.length} prunable channel groups, ${prunable} prunable channels (${result.groups.filter((g) => g.coupled).length} coupled groups)`);
  console.log(`Reachable by whole-channel pruning: up to ${formatPercent(result.maxReduction.flops)} of FLOPs, ${formatPercent(result.maxReduction.params)} of params`);
  if (result.layerLatency) {
    console.log('skipped' in result.layerLatency ? result.layerLatency.skipped : `Layers timed alone on ${result.layerLatency.backend}, batch ${result.layerLatency.batchSize}: ${result.layerLatency.totalMs.toFixed(2)} ms summed (median of 5 runs each)${result.layerLatency.failed.length ? `; not timed: ${result.layerLatency.failed.join(', ')}` : ''}`);
  }
  if (result.onnx) console.log(`Import checked in ${formatOnnxCheck(result.onnx)}`);
  if (result.onnxProblem) console.log(`Import not checked: ${result.onnxProblem}`);
  if (result.verify) {
    const v = result.verify;
    const rows = v.outputs.map((o) => [o.output, basename(o.file), o.maxAbs.toExponential(2), o.maxRel.toExponential(2), o.passed ? 'ok' : 'DIFFERS']);
    console.log(`\nVerify on ${v.samples} samples (relative tolerance ${v.tolerance}):`);
    console.log(table(['output', 'expected', 'max abs diff', 'max rel diff', ''], rows));
    console.log(v.passed ? 'Outputs match.' : `Outputs differ beyond the tolerance (exit code ${VERIFY_FAILED_EXIT}).`);
  }
  return code;
}

async function pruneCommand(args: ParsedArgs, json: boolean): Promise<number> {
  const configPath = args.positional[0];
  if (!configPath) throw new UsageError('prune needs the path of a *.prune.json config');
  const { loadConfig } = await import('../engine/config/index.js');
  const { executeSession } = await import('../engine/session/session.js');
  const output = typeof args.flags.get('output') === 'string' ? resolve(String(args.flags.get('output'))) : undefined;
  const method = typeof args.flags.get('method') === 'string' ? String(args.flags.get('method')) : undefined;
  // --export tfjs: also a TF.js copy in <output>/tfjs/ (formats comma-separated, as the config's "export" lists them).
  const exportFormats = typeof args.flags.get('export') === 'string' ? String(args.flags.get('export')).split(',').filter(Boolean) : undefined;
  const config = loadConfig(resolve(configPath), { method, output, export: exportFormats });
  const abort = cancelOnSignals(json);
  const printer = json ? (e: EngineEvent) => console.log(JSON.stringify(e)) : humanPrinter();
  const result = await executeSession(config, printer, { signal: abort.signal, dryRun: args.flags.has('dry-run') });
  return result.type === 'done' ? 0 : result.cancelled ? 130 : 1;
}

/** Aborts on Ctrl-C or SIGTERM, saying so unless the output is JSON; `release` stops listening. */
function cancelOnSignals(json: boolean): { signal: AbortSignal; release: () => void } {
  const abort = new AbortController();
  const onSignal = () => {
    if (!json) console.error('\nCancelling…');
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return { signal: abort.signal, release: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); } };
}

function sensitivityRatios(args: ParsedArgs): number[] | undefined {
  const value = args.flags.get('ratios');
  if (value === undefined) return undefined;
  const ratios = typeof value === 'string' ? value.split(',').filter(Boolean).map(Number) : [];
  if (ratios.length === 0 || ratios.some((r) => !Number.isFinite(r) || r <= 0 || r >= 1)) {
    throw new UsageError('--ratios needs fractions between 0 and 1, comma-separated, e.g. --ratios 0.1,0.3,0.5');
  }
  return ratios;
}

function sensitivitySamples(args: ParsedArgs): number | undefined {
  const value = args.flags.get('samples');
  if (value === undefined) return undefined;
  const samples = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(samples) || samples < 1) throw new UsageError('--samples needs a whole number ≥ 1, e.g. --samples 512');
  return samples;
}

async function sensitivityCommand(args: ParsedArgs, json: boolean): Promise<number> {
  const configPath = args.positional[0];
  if (!configPath) throw new UsageError('sensitivity needs the path of a *.prune.json config (its model and data are measured)');
  const ratios = sensitivityRatios(args);
  const samples = sensitivitySamples(args);
  const { loadConfig } = await import('../engine/config/index.js');
  const { runSensitivity, defaultCacheDir } = await import('../engine/sensitivity/run.js');
  const { sensitivityScore } = await import('../engine/sensitivity/index.js');
  const config = loadConfig(resolve(configPath));
  const abort = cancelOnSignals(json);
  const layerAtATime = args.flags.has('layer-at-a-time');
  const lastRatio = ratios ? Math.max(...ratios) : 0.9;
  let result;
  try {
    result = await runSensitivity(config, {
      ratios, samples, layerAtATime, signal: abort.signal, cacheDir: defaultCacheDir(config.configPath),
      onPoint: (entry, point) => {
        if (!json && point.ratio === lastRatio) console.log(`  ${layerAtATime ? 'layer' : 'group'} ${entry.id} (${entry.producers.join(', ')}) measured`);
      },
    });
  } catch (err) {
    if (abort.signal.aborted) {
      if (!json) console.error('prunelens: cancelled');
      return 130;
    }
    throw err;
  } finally {
    abort.release();
  }
  const { report, file } = result;
  if (json) {
    console.log(JSON.stringify({ ...report, file }));
    return 0;
  }
  const metricName = report.metric.name;
  const ranked = [...report.groups].sort((a, b) => sensitivityScore(report, b) - sensitivityScore(report, a));
  const rows = ranked.map((g) => [
    String(g.id), g.producers.join(', '), g.channels, formatPercent(g.flopsShare), formatPercent(g.latencyShare),
    ...report.ratios.map((r) => {
      const p = g.points.find((q) => q.ratio === r);
      return p ? formatMetricValue({ name: metricName, value: p.metric }) : '—';
    }),
    formatMetricValue({ name: metricName, value: sensitivityScore(report, g) }),
  ]);
  console.log(`\n${report.model}: ${metricName} with the lowest-L2 channels of ${report.mode === 'layer' ? 'each producer layer alone' : 'each channel group'} removed, on ${report.samples} samples (dense ${formatMetricValue({ name: metricName, value: report.dense.metric })}); most sensitive first`);
  console.log(table([report.mode === 'layer' ? 'layer' : 'group', 'producers', 'channels', 'FLOPs share', 'latency share', ...report.ratios.map((r) => `${formatPercent(r, 0)} removed`), 'mean drop'], rows));
  if (report.latency && 'skipped' in report.latency) console.log(report.latency.skipped);
  if (report.mode === 'layer') console.log('Layer at a time masks one producer alone: a layer coupled to others (a residual add) can look robust although its channels cannot be removed without its partners\'.');
  console.log(`\nReport: ${file}`);
  return 0;
}

/** Readable progress: phases, epochs, warnings and a final before/after table. */
function humanPrinter(): (e: EngineEvent) => void {
  let lastStepPrint = 0;
  let sessionEtaMs: number | undefined;
  let synthetic = false;
  return (e) => {
    switch (e.type) {
      case 'start':
        console.log(`${e.method} on ${e.model.name}: ${formatCount(e.model.params)} params, ${formatCount(e.model.flops)} FLOPs, ${e.model.prunableChannels} prunable channels in ${e.model.prunableGroups} groups; backend ${e.backend}`);
        synthetic = e.data?.synthetic === true;
        if (synthetic) console.log(SYNTHETIC_DATA_LINE);
        break;
      case 'phase':
        if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
        console.log(`» ${e.phase}${e.message ? `: ${e.message}` : ''}`);
        break;
      case 'step': {
        const now = Date.now();
        if (now - lastStepPrint > 2000 && process.stdout.isTTY) {
          lastStepPrint = now;
          process.stdout.write(`\r  epoch ${e.epoch + 1} step ${e.step + 1}/${e.stepsPerEpoch} loss ${e.loss.toFixed(4)} · ${formatPercent(e.progress, 0)} of the session, ETA ${formatEta(sessionEtaMs)}   `);
        }
        break;
      }
      case 'progress': {
        // The session's one progress: between training steps it is the only news (timing, evaluation).
        sessionEtaMs = e.etaMs;
        const now = Date.now();
        if (now - lastStepPrint > 2000 && process.stdout.isTTY && !/step \d+ of/.test(e.activity)) {
          lastStepPrint = now;
          process.stdout.write(`\r  ${formatPercent(e.progress, 0)} · ${e.activity}${e.etaMs !== undefined ? ` · ETA ${formatEta(e.etaMs)}` : ''}   \x1b[K`);
        }
        break;
      }
      case 'epoch':
        if (process.stdout.isTTY) process.stdout.write('\r');
        console.log(`  ${e.phase} epoch ${e.epoch + 1}/${Math.ceil(e.epochs)}: loss ${e.loss.toFixed(4)}${e.valAccuracy !== undefined ? `, val top-1 ${formatAccuracy(e.valAccuracy)}${synthetic ? ' (synthetic data)' : ''}` : e.valMetric ? `, val ${e.valMetric.name} ${formatMetricValue(e.valMetric)}` : ''}`);
        break;
      case 'signal': {
        const info = signalInfo(e.method, e.name);
        const value = Number.isInteger(e.value) ? String(e.value) : e.value.toPrecision(4);
        console.log(`  ${e.method} ${info ? info.label : e.name} @${e.step}: ${value}${info ? ` ${info.unit}` : ''}`);
        break;
      }
      case 'warning':
        console.log(`  warning: ${e.message}`);
        break;
      case 'done': {
        const rows: string[][] = [
          ['params', formatCount(e.before.params), formatCount(e.after.params), formatChange(e.before.params, e.after.params)],
          ['FLOPs', formatCount(e.before.flops), formatCount(e.after.flops), formatChange(e.before.flops, e.after.flops)],
        ];
        const metric = e.metric;
        if (metric) {
          const name = e.data?.synthetic ? `${metric.name} on synthetic data (meaningless)` : metric.name;
          rows.push([name, formatMetricValue({ name: metric.name, value: metric.before }), formatMetricValue({ name: metric.name, value: metric.after }), formatMetricChange(metric.name, metric.before, metric.after)]);
        } else if (e.accuracy) rows.push([e.data?.synthetic ? 'top-1 on synthetic data (meaningless)' : 'top-1', formatAccuracy(e.accuracy.before), formatAccuracy(e.accuracy.after), formatPointChange(e.accuracy.before, e.accuracy.after)]);
        if (e.latency) {
          rows.push([`latency (${formatLatencyRuntime(e.latency.runtime, e.latency.after.batchSize)})`, formatLatency(e.latency.before), formatLatency(e.latency.after), `${e.latency.speedup.toFixed(2)}×`]);
          const tfjs = e.latency.tfjs;
          if (tfjs) rows.push([`latency (TF.js ${formatLatencyRuntime(tfjs.after.backend, tfjs.after.batchSize)})`, formatLatency(tfjs.before), formatLatency(tfjs.after), `${tfjs.speedup.toFixed(2)}×`]);
        }
        if (e.size) rows.push(['file size', formatBytes(e.size.before), formatBytes(e.size.after), formatChange(e.size.before, e.size.after)]);
        console.log('');
        console.log(table(['', 'before', 'after', 'change'], rows));
        if (e.onnx) console.log(`Checked in ${formatOnnxCheck(e.onnx)}`);
        if (e.speed) console.log(`Speed vs FLOPs: ${e.speed.note}`);
        if (metric) console.log(`${metric.name}: ${formatRecovery(metric)}${metric.objective ? ` (${metric.objective})` : ''}`);
        console.log(e.dryRun
          ? `\nDry run: ${e.channelsRemoved} channels would be removed; nothing was written.`
          : `\n${e.channelsRemoved} channels physically removed. Pruned model: ${e.output}\nReport: ${e.report}\nWall time ${formatDuration(e.wallTimeMs)} on ${e.backend}${memoryLine(e.memory)}.`);
        break;
      }
      case 'error':
        console.error(`prunelens: ${e.message}`);
        break;
      default:
        break;
    }
  };
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(`prunelens: ${describeError(err)}`); process.exitCode = 1; },
);
