import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ReportComparison, WebviewMessage } from '../protocol/webview.js';
import { Commands } from './constants.js';
import { methodLabel } from '../protocol/methods.js';
import { isPruneConfig } from './configDiagnostics.js';
import type { Cmd, Ctx } from './ctx.js';
import { parse } from 'jsonc-parser/lib/esm/main.js';
import { configPathFor, dataIsUnlabelled, newConfigText, NO_LABELS_NOTE, updateConfigText } from './newConfig.js';
import { askAboutExistingConfig, configuredOutput, pickDataChoice, pickPruneChoices } from './pruneModelFlow.js';
import type { RunRecord } from './runStore.js';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { openReportAsJson, ReportEditorProvider } from './panel/editorPanel.js';
import { parseReport, prunedModelBeside, reportComparison, variantFolderNote } from './results.js';

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
    // The config it wrote, open beside the run: where to change the method, target or data next time.
    await vscode.window.showTextDocument(configUri, { preview: false, preserveFocus: true });
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
    if (!config || refuseWithErrors(config, 'run')) return undefined;
    return ctx.sessions.start(config.fsPath);
  };
}

export function dryRunConfig(ctx: Ctx): Cmd {
  return async (arg?: vscode.Uri) => {
    const config = configArg(arg);
    if (!config || refuseWithErrors(config, 'dry-run')) return undefined;
    return ctx.sessions.start(config.fsPath, { dryRun: true });
  };
}

/** The errors VS Code shows for a config (the schema's and PruneLens' own), first line first. */
export function configErrors(uri: vscode.Uri): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(uri)
    .filter((d) => d.severity === vscode.DiagnosticSeverity.Error)
    .sort((a, b) => a.range.start.line - b.range.start.line);
}

/** A config with known errors is not run: one line says why, with the way to the problem. */
function refuseWithErrors(uri: vscode.Uri, what: string): boolean {
  const errors = configErrors(uri);
  if (errors.length === 0) return false;
  const first = errors[0];
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  const show = 'Show Problem';
  void vscode.window
    .showErrorMessage(`PruneLens: not ${what === 'run' ? 'running' : 'dry-running'} ${path.basename(uri.fsPath)}: line ${first.range.start.line + 1}: ${first.message}${more}`, show)
    .then((choice) => { if (choice === show) void vscode.window.showTextDocument(uri, { selection: first.range }); });
  return true;
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
    if (!config || !method || refuseWithErrors(config, 'run')) return undefined;
    const text = await readText(config);
    const output = text !== undefined ? configuredOutput(text, config.fsPath) : undefined;
    if (!output) {
      void vscode.window.showErrorMessage(`PruneLens: ${path.basename(config.fsPath)} has no "output" folder to derive the ${methodLabel(method)} variant's folder from.`);
      return undefined;
    }
    ctx.log.info(variantFolderNote(output, method));
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
    // Rendered in the editor area; the report editor's "Open as JSON" goes back to the text.
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(report), ReportEditorProvider.viewType, { preview: false });
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

/** The session (or a run) full width in the editor area. */
export function openInEditor(ctx: Ctx): Cmd {
  return (runId?: string) => ctx.editorPanel.show(typeof runId === 'string' ? runId : undefined);
}

/** What a finished run left: its pruned model, report and config (by run id, report file or config). */
interface RunResult {
  output?: string;
  report?: string;
  configPath?: string;
}

async function resultOf(ctx: Ctx, arg: unknown): Promise<RunResult | undefined> {
  if (typeof arg === 'string' && arg.startsWith('report:')) return resultOfReport(arg.slice('report:'.length));
  if (typeof arg === 'string') {
    const run = ctx.store.get(arg);
    // The panel shows a result from the done event, a moment before the run's record is updated.
    const done = ctx.store.eventsOf(arg).find((e) => e.type === 'done');
    const fromEvent = done?.type === 'done' ? { output: done.output, report: done.report } : {};
    return run && { output: run.output ?? fromEvent.output, report: run.report ?? fromEvent.report, configPath: run.configPath };
  }
  if (arg instanceof vscode.Uri) {
    if (path.basename(arg.fsPath) === 'pruning-report.json') return resultOfReport(arg.fsPath);
    const run = ctx.store.latestFor(arg.fsPath, (r) => r.status === 'done' && !!r.output);
    return run && { output: run.output, report: run.report, configPath: run.configPath };
  }
  const run = await pickRun(ctx.store.all().filter((r) => r.status === 'done' && r.output), 'Which run?');
  return run && { output: run.output, report: run.report, configPath: run.configPath };
}

function resultOfReport(file: string): RunResult | undefined {
  if (!existsSync(file)) return undefined;
  let configPath: string | undefined;
  try {
    configPath = parseReport(readFileSync(file, 'utf8'), file).config;
  } catch {
    configPath = undefined;
  }
  return { report: file, output: prunedModelBeside(file, readdirSync(path.dirname(file))), configPath };
}

function noResult(what: string): undefined {
  void vscode.window.showInformationMessage(`PruneLens: no finished run with ${what} yet. Run the config first.`);
  return undefined;
}

/** The pruned model in the explorer. */
export function revealOutput(ctx: Ctx): Cmd {
  return async (arg?: unknown) => {
    const output = (await resultOf(ctx, arg))?.output;
    if (!output || !existsSync(output)) return noResult('a pruned model');
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(output));
    return output;
  };
}

/** Per-layer analysis of the pruned model, in the panel. */
export function openPrunedModel(ctx: Ctx): Cmd {
  return async (arg?: unknown) => {
    const output = (await resultOf(ctx, arg))?.output;
    if (!output || !existsSync(output)) return noResult('a pruned model');
    return vscode.commands.executeCommand(Commands.analyzeModel, vscode.Uri.file(output));
  };
}

/** "Compare with original": every layer's channels, params, FLOPs and latency before and after, a sortable table in the editor area. */
export function compareWithOriginal(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<ReportComparison | undefined> => {
    const report = (await resultOf(ctx, arg))?.report;
    if (!report || !existsSync(report)) return noResult('a report');
    ctx.comparisons.show(report);
    return reportComparison(parseReport(readFileSync(report, 'utf8'), report), report);
  };
}

/** The report editor's title action: the file as JSON text. */
export function openReportAsJsonCommand(): Cmd {
  return (arg?: vscode.Uri) => {
    const uri = arg instanceof vscode.Uri ? arg : activeReportUri();
    return uri ? openReportAsJson(uri) : undefined;
  };
}

function activeReportUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === ReportEditorProvider.viewType ? input.uri : undefined;
}

export function openConfig(ctx: Ctx): Cmd {
  return async (arg?: unknown) => {
    const configPath = (await resultOf(ctx, arg))?.configPath;
    if (!configPath || !existsSync(configPath)) return noResult('a config');
    await vscode.window.showTextDocument(vscode.Uri.file(configPath), { preview: false });
    return configPath;
  };
}

/**
 * An example to start from: the built-in demo trains its MNIST CNN (the CLI's `demo --quick`, in its
 * own process), and a GoPrune config for that model on built-in MNIST is written beside it and opened.
 */
export function openExample(ctx: Ctx): Cmd {
  return async () => {
    const root = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
    if (!root) {
      void vscode.window.showInformationMessage('PruneLens: open a folder first; the example is written into it.');
      return undefined;
    }
    const folder = path.join(root, 'prunelens-example');
    const configPath = path.join(folder, 'mnist.prune.json');
    if (!existsSync(path.join(folder, 'dense', 'model.json'))) {
      if (!ctx.sessions.ensureTrusted()) return undefined;
      const cli = vscode.Uri.joinPath(ctx.extension.extensionUri, 'dist', 'cli.js').fsPath;
      const ok = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'PruneLens: training the example MNIST CNN (built-in demo, about a minute)' }, () =>
        new Promise<boolean>((resolve) => {
          const child = spawn(process.execPath, [cli, 'demo', '--quick', '--methods', 'l1', '--out', folder], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
          child.stdout.on('data', (d: Buffer) => ctx.log.info(`example: ${d.toString().trimEnd()}`));
          child.stderr.on('data', (d: Buffer) => ctx.log.info(`example: ${d.toString().trimEnd()}`));
          child.on('error', () => resolve(false));
          child.on('close', (code) => resolve(code === 0));
        }));
      if (!ok || !existsSync(path.join(folder, 'dense', 'model.json'))) {
        void vscode.window.showErrorMessage('PruneLens: the example model could not be trained; see the PruneLens log.');
        return undefined;
      }
    }
    if (!existsSync(configPath)) {
      await writeText(vscode.Uri.file(configPath), `${JSON.stringify({
        model: 'dense/model.json',
        method: 'goprune',
        target: { flopsReduction: 0.5 },
        data: { format: 'builtin', name: 'mnist', trainLimit: 2000, testLimit: 1000 },
        train: { epochs: 1, batchSize: 64 },
        finetune: { epochs: 1 },
        output: 'pruned',
      }, null, 2)}\n`);
    }
    await vscode.window.showTextDocument(vscode.Uri.file(configPath), { preview: false });
    return configPath;
  };
}

/** Actions the side panel asks for. */
export function handlePanelMessage(ctx: Ctx, message: WebviewMessage): unknown {
  switch (message.type) {
    case 'selectRun': {
      const runs = ctx.store.all();
      const events = ctx.store.eventsOf(message.runId).map((event) => ({ runId: message.runId, event }));
      ctx.panel.post({ type: 'snapshot', runs, activeRunId: message.runId, events });
      ctx.editorPanel.post({ type: 'snapshot', runs, activeRunId: message.runId, events, placement: 'editor' });
      return undefined;
    }
    case 'openInEditor':
      return vscode.commands.executeCommand(Commands.openInEditor, message.runId);
    case 'revealOutput':
      return vscode.commands.executeCommand(Commands.revealOutput, message.runId);
    case 'openPrunedModel':
      return vscode.commands.executeCommand(Commands.openPrunedModel, message.runId);
    case 'compareWithOriginal':
      return vscode.commands.executeCommand(Commands.compareWithOriginal, message.runId);
    case 'openConfig':
      return vscode.commands.executeCommand(Commands.openConfig, message.runId);
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

/** Actions from a report editor: its run is the report file. */
export function handleReportMessage(ctx: Ctx, message: WebviewMessage, reportFile: string): unknown {
  const id = `report:${reportFile}`;
  switch (message.type) {
    case 'openReport':
      return openReportAsJson(vscode.Uri.file(reportFile));
    case 'revealOutput':
      return vscode.commands.executeCommand(Commands.revealOutput, id);
    case 'openPrunedModel':
      return vscode.commands.executeCommand(Commands.openPrunedModel, id);
    case 'compareWithOriginal':
      return vscode.commands.executeCommand(Commands.compareWithOriginal, id);
    case 'openConfig':
      return vscode.commands.executeCommand(Commands.openConfig, id);
    case 'rerun': {
      const configPath = resultOfReport(reportFile)?.configPath;
      return configPath ? vscode.commands.executeCommand(Commands.runConfig, vscode.Uri.file(configPath)) : undefined;
    }
    default:
      return handlePanelMessage(ctx, message);
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
