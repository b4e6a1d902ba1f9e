import * as path from 'node:path';
import * as vscode from 'vscode';
import type { WebviewMessage } from '../protocol/webview.js';
import { Commands } from './constants.js';
import { methodLabel } from '../protocol/methods.js';
import { isPruneConfig } from './configDiagnostics.js';
import type { Cmd, Ctx } from './ctx.js';
import { parse } from 'jsonc-parser/lib/esm/main.js';
import { configPathFor, dataIsUnlabelled, newConfigText, NO_LABELS_NOTE, updateConfigText } from './newConfig.js';
import { askAboutExistingConfig, configuredOutput, pickDataChoice, pickPruneChoices } from './pruneModelFlow.js';
import type { RunRecord } from './runStore.js';

/** Explorer: "Prune Model…" on a model.json, .keras, .h5 or .onnx — pick method, target and data, write the config, run it. */
export function pruneModel(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri) => {
    const model = arg ?? (await pickModel());
    if (!model) return undefined;
    if (!ctx.sessions.ensureTrusted()) return undefined;
    const modelName = vscode.workspace.asRelativePath(model);
    const choices = await pickPruneChoices(modelName);
    if (!choices) return undefined;
    const configPath = configPathFor(model.fsPath);
    const configUri = vscode.Uri.file(configPath);
    const existing = await readText(configUri);
    if (existing !== undefined) {
      const answer = await askAboutExistingConfig(configPath, choices);
      if (!answer) return undefined;
      if (answer === 'update') {
        const existingData = (parse(existing) as { data?: unknown } | undefined)?.data;
        const data = await pickDataChoice(model.fsPath, modelName, choices.method, { name: path.basename(configPath), data: existingData });
        if (!data) return undefined;
        const text = updateConfigText(existing, { ...choices, data: data === 'keep' ? undefined : data }, configPath);
        await writeText(configUri, text);
        sayWhenDistilling(ctx, text, configPath);
      }
    } else {
      const data = await pickDataChoice(model.fsPath, modelName, choices.method);
      if (!data || data === 'keep') return undefined;
      const text = newConfigText(model.fsPath, { ...choices, data });
      await writeText(configUri, text);
      ctx.log.info(`Wrote ${configPath}`);
      sayWhenDistilling(ctx, text, configPath);
    }
    return ctx.sessions.start(configPath);
  };
}

/** Data without labels trains by distillation: the flow wrote `"objective": "distill"` and says so, without asking. */
function sayWhenDistilling(ctx: Ctx, configText: string, configPath: string): void {
  if (!dataIsUnlabelled((parse(configText) as { data?: unknown } | undefined)?.data, configPath)) return;
  const message = `${NO_LABELS_NOTE}. ${path.basename(configPath)} sets "objective": "distill".`;
  ctx.log.info(message);
  void vscode.window.showInformationMessage(`PruneLens: ${message}`);
}

/** Per-layer analysis of a model in the panel; allowed in untrusted workspaces. */
export function analyzeModel(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri) => {
    const model = arg ?? (await pickModel());
    if (!model) return undefined;
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `PruneLens: analysing ${modelLabel(model.fsPath)}` },
      () => ctx.sessions.analyze(model.fsPath, { showInPanel: true }),
    );
    if (result.outcome.type === 'error') void vscode.window.showErrorMessage(`PruneLens: ${result.outcome.message}`);
    return result;
  };
}

export function runConfig(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri) => {
    const config = configArg(arg);
    return config ? ctx.sessions.start(config.fsPath) : undefined;
  };
}

export function dryRunConfig(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri) => {
    const config = configArg(arg);
    return config ? ctx.sessions.start(config.fsPath, { dryRun: true }) : undefined;
  };
}

type SensitivitySettings = { ratios?: number[]; samples?: number; layerAtATime?: boolean };

/**
 * Sensitivity analysis of a config's model on its data: each channel group's metric with its weakest
 * channels removed, streamed into the panel, the report written beside the config. Asks how thorough
 * (a quick look, the standard curves, layer at a time, or custom ratios and samples) unless the caller
 * gives the settings.
 */
export function analyzeSensitivity(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri, options?: SensitivitySettings) => {
    const config = configArg(arg);
    if (!config) return undefined;
    if (!ctx.sessions.ensureTrusted()) return undefined;
    const settings = options ?? (await pickSensitivitySettings());
    return settings ? ctx.sessions.sensitivity(config.fsPath, settings) : undefined;
  };
}

async function pickSensitivitySettings(): Promise<SensitivitySettings | undefined> {
  const presets: (vscode.QuickPickItem & { settings?: SensitivitySettings })[] = [
    { label: 'Quick look', description: '25%, 50%, 75% of each group removed · 64 samples', settings: { ratios: [0.25, 0.5, 0.75], samples: 64 } },
    { label: 'Standard', description: '10%…90% removed · 512 samples', detail: 'The curves "allocation": "sensitivity" measures; they share its cache', settings: {} },
    { label: 'Layer at a time', description: 'each producer layer alone · 10%…90% · 512 samples', detail: 'For comparison: a coupled layer (a residual branch) looks robust alone although its channels go with its partners\'', settings: { layerAtATime: true } },
    { label: 'Custom…', description: 'choose the ratios and the number of samples' },
  ];
  const picked = await vscode.window.showQuickPick(presets, { placeHolder: 'How thorough a sensitivity analysis?' });
  if (!picked) return undefined;
  if (picked.settings) return picked.settings;
  const ratiosText = await vscode.window.showInputBox({
    prompt: 'Fractions of each channel group to remove, comma-separated, each between 0 and 1',
    value: '0.25,0.5,0.75',
    validateInput: (text) => (parseRatios(text) ? undefined : 'Give fractions between 0 and 1 (exclusive), e.g. 0.1,0.3,0.5'),
  });
  const ratios = ratiosText === undefined ? undefined : parseRatios(ratiosText);
  if (!ratios) return undefined;
  const samplesText = await vscode.window.showInputBox({
    prompt: 'Validation samples every point is measured on (the first ones, the same each time)',
    value: '64',
    validateInput: (text) => (/^\s*[1-9]\d*\s*$/.test(text) ? undefined : 'Give a whole number ≥ 1, e.g. 64'),
  });
  if (samplesText === undefined) return undefined;
  return { ratios, samples: Number(samplesText.trim()) };
}

function parseRatios(text: string): number[] | undefined {
  const ratios = text.split(',').map((r) => r.trim()).filter(Boolean).map(Number);
  return ratios.length > 0 && ratios.every((r) => Number.isFinite(r) && r > 0 && r < 1) ? ratios : undefined;
}

/** The same config with another method, written to `<output>-<method>`. */
export function runVariant(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri, method?: string) => {
    const config = configArg(arg);
    if (!config || !method) return undefined;
    const text = await readText(config);
    const output = text !== undefined ? configuredOutput(text, config.fsPath) : undefined;
    if (!output) {
      void vscode.window.showErrorMessage(`PruneLens: ${path.basename(config.fsPath)} has no "output" folder to derive the ${methodLabel(method)} variant's folder from.`);
      return undefined;
    }
    return ctx.sessions.start(config.fsPath, { method, output: `${output.replace(/[\\/]+$/, '')}-${method}` });
  };
}

/** Opens pruning-report.json of a run (by id), of a config's last run (by URI), or of the latest run. */
export function openReport(ctx: Ctx): Cmd {
  return async (arg?: string | vscode.Uri) => {
    let run: RunRecord | undefined;
    if (typeof arg === 'string') run = ctx.store.get(arg);
    else if (arg) run = ctx.store.latestFor(arg.fsPath, (r) => r.status === 'done' && !!r.report);
    else run = await pickRun(ctx.store.all().filter((r) => r.status === 'done' && r.report), 'Open the report of which run?');
    let report = run?.report;
    if (!report && arg instanceof vscode.Uri) {
      // No remembered run: the config's output folder may still hold a report from the CLI.
      const text = await readText(arg);
      const output = text !== undefined ? configuredOutput(text, arg.fsPath) : undefined;
      const candidate = output && path.join(output, 'pruning-report.json');
      if (candidate && (await readText(vscode.Uri.file(candidate))) !== undefined) report = candidate;
    }
    if (!report) {
      void vscode.window.showInformationMessage('PruneLens: no finished run with a report yet. Run the config first.');
      return undefined;
    }
    const document = await vscode.workspace.openTextDocument(vscode.Uri.file(report));
    await vscode.window.showTextDocument(document, { preview: false });
    return report;
  };
}

export function stopSession(ctx: Ctx): Cmd {
  return async (arg?: string | vscode.Uri) => {
    if (typeof arg === 'string') return ctx.sessions.stopRun(arg);
    if (arg) return ctx.sessions.stop(arg.fsPath);
    const active = ctx.sessions.activeRuns();
    if (active.length === 0) {
      void vscode.window.showInformationMessage('PruneLens: no session is running.');
      return false;
    }
    const run = active.length === 1 ? active[0] : await pickRun(active, 'Stop which session?');
    return run ? ctx.sessions.stop(run.configPath) : false;
  };
}

export function rerun(ctx: Ctx): Cmd {
  return async (runId?: string) => {
    const run = runId ? ctx.store.get(runId) : [...ctx.store.all()].sort((a, b) => b.startedAt - a.startedAt)[0];
    if (!run) {
      void vscode.window.showInformationMessage('PruneLens: no earlier run to repeat.');
      return undefined;
    }
    return ctx.sessions.start(run.configPath, run.overrides ?? {});
  };
}

export function showPanel(ctx: Ctx): Cmd {
  return () => ctx.panel.reveal();
}

/** Actions the side panel asks for. */
export function handlePanelMessage(ctx: Ctx, message: WebviewMessage): unknown {
  switch (message.type) {
    case 'selectRun': {
      const runs = ctx.store.all();
      const events = ctx.store.eventsOf(message.runId).map((event) => ({ runId: message.runId, event }));
      ctx.panel.post({ type: 'snapshot', runs, activeRunId: message.runId, events });
      return undefined;
    }
    case 'openReport':
      return vscode.commands.executeCommand(Commands.openReport, message.runId);
    case 'cancelRun':
      return ctx.sessions.stopRun(message.runId);
    case 'rerun':
      return vscode.commands.executeCommand(Commands.rerun, message.runId);
    case 'ready':
      return undefined;
  }
}

function configArg(arg: vscode.Uri | undefined): vscode.Uri | undefined {
  if (arg instanceof vscode.Uri) return arg;
  const active = vscode.window.activeTextEditor?.document.uri;
  if (active && isPruneConfig(active)) return active;
  void vscode.window.showInformationMessage('PruneLens: open a *.prune.json config (or pick one in the explorer) to run it.');
  return undefined;
}

/** A model.json is named by its folder, a Keras or ONNX file by its own name. */
function modelLabel(modelPath: string): string {
  return path.basename(modelPath) === 'model.json' ? path.basename(path.dirname(modelPath)) : path.basename(modelPath);
}

async function pickModel(): Promise<vscode.Uri | undefined> {
  const models = await vscode.workspace.findFiles('**/{*model.json,*.keras,*.h5,*.hdf5,*.onnx}', '**/node_modules/**', 500);
  if (models.length === 0) {
    void vscode.window.showInformationMessage('PruneLens: no model.json, .keras, .h5 or .onnx file in this workspace. PruneLens works on TF.js layers models, Keras models and ONNX CNNs.');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(models.map((uri) => ({ label: vscode.workspace.asRelativePath(uri), uri })), { placeHolder: 'Which model?' });
  return picked?.uri;
}

async function pickRun(runs: RunRecord[], placeHolder: string): Promise<RunRecord | undefined> {
  if (runs.length === 0) return undefined;
  const items = [...runs]
    .sort((a, b) => b.startedAt - a.startedAt)
    .map((run) => ({ label: `${methodLabel(run.method)} · ${path.basename(run.configPath)}`, description: `${run.status} · ${new Date(run.startedAt).toLocaleString()}`, run }));
  return (await vscode.window.showQuickPick(items, { placeHolder }))?.run;
}

async function readText(uri: vscode.Uri): Promise<string | undefined> {
  try {
    return Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
  } catch {
    return undefined;
  }
}

async function writeText(uri: vscode.Uri, text: string): Promise<void> {
  await vscode.workspace.fs.writeFile(uri, Buffer.from(text, 'utf8'));
}
