// Integration tests inside a real VS Code extension host (code-server), with the real engine
// process and the fixture workspace made by test/e2e/fixtures.mjs.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { EngineEvent, ErrorEvent, SensitivityDoneEvent } from '../../../src/protocol/events.js';
import type { PruneLensApi } from '../../../src/extension/main.js';
import type { RunRecord } from '../../../src/extension/runStore.js';
import type { AnalysisResult } from '../../../src/extension/sessions.js';
import { Commands, EXTENSION_ID } from '../../../src/extension/constants.js';
import type { ReportComparison } from '../../../src/protocol/webview.js';
import { loadConfig } from '../../../src/engine/config/index.js';

const workspace = () => vscode.workspace.workspaceFolders![0].uri.fsPath;
const inWorkspace = (...parts: string[]) => path.join(workspace(), ...parts);
const TEMPORARY = /prunelens-(tmp|old)-/;

async function api(): Promise<PruneLensApi> {
  const extension = vscode.extensions.getExtension<PruneLensApi>(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is not installed`);
  return extension.activate();
}

async function codeLenses(file: string): Promise<vscode.CodeLens[]> {
  const uri = vscode.Uri.file(inWorkspace(file));
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri));
  const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', uri)) ?? [];
  return lenses.filter((lens) => lens.command?.command.startsWith('prunelens.'));
}

/** Resolves with the first engine event that matches, of any session. */
function nextEvent(pruneLens: PruneLensApi, match: (event: EngineEvent) => boolean, timeoutMs = 60000): Promise<EngineEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      subscription.dispose();
      reject(new Error('no matching engine event in time'));
    }, timeoutMs);
    const subscription = pruneLens.onDidEngineEvent(({ event }) => {
      if (!match(event)) return;
      clearTimeout(timer);
      subscription.dispose();
      resolve(event);
    });
  });
}

async function waitFor<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function leftovers(folder: string): string[] {
  return fs.existsSync(folder) ? fs.readdirSync(folder).filter((name) => TEMPORARY.test(name)) : [];
}

function pruneLensDiagnostics(file: string): vscode.Diagnostic[] {
  return vscode.languages.getDiagnostics(vscode.Uri.file(inWorkspace(file))).filter((d) => d.source === 'PruneLens');
}

suite('PruneLens in VS Code', () => {
  let pruneLens: PruneLensApi;

  suiteSetup(async () => {
    pruneLens = await api();
  });

  test('registers every command it contributes', async () => {
    const registered = new Set(await vscode.commands.getCommands(true));
    const contributed = (vscode.extensions.getExtension(EXTENSION_ID)!.packageJSON.contributes.commands as { command: string }[]).map((c) => c.command);
    assert.deepEqual(contributed.filter((c) => !registered.has(c)), []);
    for (const id of Object.values(Commands)) assert.ok(registered.has(id), `${id} is not registered`);
  });

  test('config files get run lenses at the top and one lens per method on the method line', async () => {
    const lenses = await codeLenses('tiny.prune.json');
    const text = fs.readFileSync(inWorkspace('tiny.prune.json'), 'utf8');
    const methodLine = text.split('\n').findIndex((line) => line.includes('"method"'));
    const top = lenses.filter((l) => l.range.start.line === 0).map((l) => l.command!.title);
    const onMethod = lenses.filter((l) => l.range.start.line === methodLine).map((l) => l.command!.title);
    assert.deepEqual(top, ['▶ Run', 'Dry run', 'Open last report']);
    assert.deepEqual(onMethod, ['$(pulse) Sensitivity', '▶ L1', '▶ GoPrune', '▶ SSR', '▶ DSP', '▶ i-SpaSP', '▶ OCSPruner']);
    assert.equal(lenses.length, 10);
  });

  test('the Run lens runs a session that writes the pruned model and its report', async () => {
    const run = (await codeLenses('tiny.prune.json')).find((l) => l.command!.title === '▶ Run')!;
    const phases: string[] = [];
    const subscription = pruneLens.onDidEngineEvent(({ event }) => event.type === 'phase' && phases.push(event.phase));
    const record = await vscode.commands.executeCommand<RunRecord>(run.command!.command, ...run.command!.arguments!);
    subscription.dispose();
    assert.equal(record.status, 'done', record.error);
    assert.ok(record.summary, 'the run has a summary');
    assert.ok(record.summary.after.flops < record.summary.before.flops, 'FLOPs went down');
    assert.ok(phases.includes('save'), `phases seen: ${phases.join(', ')}`);
    const output = inWorkspace('out', 'tiny');
    assert.ok(fs.existsSync(path.join(output, 'model.json')), 'pruned model.json written');
    const report = JSON.parse(fs.readFileSync(path.join(output, 'pruning-report.json'), 'utf8'));
    assert.equal(typeof report, 'object');
    assert.equal(record.report, path.join(output, 'pruning-report.json'));
    assert.deepEqual(leftovers(inWorkspace('out')), []);
    assert.ok(pruneLens.runs().some((r) => r.runId === record.runId && r.status === 'done'), 'the run is remembered');
  });

  test('the Sensitivity lens analyses the config in the engine and writes the report beside it', async () => {
    const lens = (await codeLenses('tiny.prune.json')).find((l) => l.command!.title === '$(pulse) Sensitivity')!;
    assert.equal(lens.command!.command, Commands.analyzeSensitivity);
    const outcome = await vscode.commands.executeCommand<SensitivityDoneEvent | ErrorEvent>(lens.command!.command, ...lens.command!.arguments!, { ratios: [0.25, 0.5], samples: 16 });
    assert.equal(outcome.type, 'sensitivityDone', outcome.type === 'error' ? outcome.message : '');
    if (outcome.type !== 'sensitivityDone') return;
    assert.equal(outcome.file, inWorkspace('tiny.sensitivity.json'));
    const written = JSON.parse(fs.readFileSync(outcome.file, 'utf8'));
    // tiny_cnn: conv1 (8 channels) and conv2 (12), each measured at both ratios.
    assert.deepEqual(written.groups.map((g: { channels: number; points: unknown[] }) => [g.channels, g.points.length]), [[8, 2], [12, 2]]);
    assert.ok(written.groups.every((g: { latencyShare?: number }) => g.latencyShare! > 0));
  });

  test('Open last report opens the report of the finished run rendered in the editor area, Open as JSON its text', async () => {
    const open = (await codeLenses('tiny.prune.json')).find((l) => l.command!.title === 'Open last report')!;
    await vscode.commands.executeCommand(open.command!.command, ...open.command!.arguments!);
    const report = inWorkspace('out', 'tiny', 'pruning-report.json');
    const input = await waitFor(() => {
      const tab = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      return tab instanceof vscode.TabInputCustom ? tab : undefined;
    }, 'the report editor');
    assert.equal(input.viewType, 'prunelens.report');
    assert.equal(input.uri.fsPath, report);
    await vscode.commands.executeCommand(Commands.openReportAsJson);
    await waitFor(() => vscode.window.activeTextEditor?.document.uri.fsPath === report, 'the report as JSON text');
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('a finished run\'s results: its output revealed, its layers compared with the original, its config; the status bar cleared', async () => {
    const run = pruneLens.runs().filter((r) => r.status === 'done' && r.configPath === inWorkspace('tiny.prune.json') && !r.dryRun).pop()!;
    assert.ok(run.row, 'the runs table has its row');
    assert.ok(run.row.latency && run.row.latency.before.p25Ms !== undefined && run.row.latency.before.p75Ms !== undefined, 'latency with its spread');
    assert.deepEqual(run.row.flops, { before: run.summary!.before.flops, after: run.summary!.after.flops });
    assert.equal(pruneLens.statusText(), '', 'no progress left in the status bar after the run');
    assert.equal(await vscode.commands.executeCommand(Commands.revealOutput, run.runId), inWorkspace('out', 'tiny', 'model.json'));
    // Compare with original: the layers beside the original's, a table in an editor-area webview.
    const compare = await vscode.commands.executeCommand<ReportComparison>(Commands.compareWithOriginal, run.runId);
    assert.equal(compare.file, inWorkspace('out', 'tiny', 'pruning-report.json'));
    const rows = new Map(compare.comparison.map((r) => [r.name, r]));
    assert.deepEqual([rows.get('conv1')?.type, rows.get('conv1')?.status, rows.get('conv1')?.channels.before], ['Conv2D', 'prunable', 8]);
    assert.equal(rows.get('conv2')?.channels.before, 12);
    assert.ok(compare.comparison.some((r) => r.channels.after < r.channels.before), 'some layer lost channels');
    // Each layer timed alone before and after, on the session's backend.
    assert.ok(rows.get('conv1')?.latencyMs?.before! > 0 && rows.get('conv1')?.latencyMs?.after! > 0, JSON.stringify(rows.get('conv1')?.latencyMs));
    assert.equal(compare.layerTiming?.backend, run.summary!.layerLatency?.backend);
    const tab = await waitFor(() => {
      const active = vscode.window.tabGroups.activeTabGroup.activeTab;
      return active?.input instanceof vscode.TabInputWebview && active.input.viewType.endsWith('prunelens.comparison') ? active : undefined;
    }, 'the comparison in the editor area');
    assert.equal(tab.label, 'tiny against the original');
    assert.equal(await vscode.commands.executeCommand(Commands.openConfig, run.runId), inWorkspace('tiny.prune.json'));
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('Open an Example Config trains the demo CNN, writes a GoPrune config that validates and opens it', async function () {
    // The built-in demo's quick training: about a minute on a loaded 2-core machine.
    this.timeout(240000);
    const folder = inWorkspace('prunelens-example');
    fs.rmSync(folder, { recursive: true, force: true });
    const configPath = await vscode.commands.executeCommand<string>(Commands.openExample);
    assert.equal(configPath, path.join(folder, 'mnist.prune.json'));
    assert.ok(fs.existsSync(path.join(folder, 'dense', 'model.json')), 'the demo CNN was trained into prunelens-example/dense');
    await waitFor(() => vscode.window.activeTextEditor?.document.uri.fsPath === configPath, 'the example config open in an editor');
    // It validates as a run would load it: the schema, the defaults, the model and output checks.
    const config = loadConfig(configPath);
    assert.equal(config.method, 'goprune');
    assert.deepEqual(config.target, { flopsReduction: 0.5 });
    assert.equal(config.model, path.join(folder, 'dense', 'model.json'));
    // And as the editor checks it: no PruneLens diagnostics, so its Run lens is offered.
    assert.deepEqual((await pruneLens.checkConfig(vscode.Uri.file(configPath))).map((d) => d.message), []);
    const lenses = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', vscode.Uri.file(configPath))) ?? [];
    assert.ok(lenses.some((l) => l.command?.title === '▶ Run'), `lenses: ${lenses.map((l) => l.command?.title).join(', ')}`);
    // Asked again, it reuses the trained model and opens the same config.
    assert.equal(await vscode.commands.executeCommand<string>(Commands.openExample), configPath);
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  test('completion of "method" lists every method with its description', async () => {
    const uri = vscode.Uri.file(inWorkspace('tiny.prune.json'));
    const document = await vscode.workspace.openTextDocument(uri);
    const line = document.getText().split('\n').findIndex((l) => l.includes('"method"'));
    const column = document.lineAt(line).text.indexOf('"l1"') + 1;
    const list = await vscode.commands.executeCommand<vscode.CompletionList>('vscode.executeCompletionItemProvider', uri, new vscode.Position(line, column));
    const ours = list.items.filter((i) => typeof i.label === 'object' && i.label.description);
    const described = new Map(ours.map((i) => [(i.label as vscode.CompletionItemLabel).label, (i.label as vscode.CompletionItemLabel).description!]));
    assert.deepEqual([...described.keys()], ['"l1"', '"goprune"', '"ssr"', '"dsp"', '"ispasp"', '"ocspruner"']);
    assert.match(described.get('"goprune"')!, /^GoPrune: l2,p group sparsity/);
  });

  test('a config runs one session at a time: a second start while it runs is refused', async () => {
    const config = vscode.Uri.file(inWorkspace('slow.prune.json'));
    const training = nextEvent(pruneLens, (e) => e.type === 'step' || e.type === 'epoch');
    const first = vscode.commands.executeCommand<RunRecord>(Commands.runConfig, config);
    await training;
    // The modal "already running" question is dismissed (test runs answer dialogs with Cancel).
    const second = await vscode.commands.executeCommand<RunRecord | undefined>(Commands.runConfig, config);
    assert.equal(second, undefined);
    assert.equal(pruneLens.activeRuns().length, 1);
    await vscode.commands.executeCommand(Commands.stopSession, config);
    assert.equal((await first).status, 'cancelled');
  });

  test('cancelling a session leaves no output folder and no temporary folders', async () => {
    const config = vscode.Uri.file(inWorkspace('slow.prune.json'));
    const training = nextEvent(pruneLens, (e) => (e.type === 'step' || e.type === 'epoch') && e.phase === 'finetune');
    const finished = vscode.commands.executeCommand<RunRecord>(Commands.runConfig, config);
    await training;
    assert.equal(pruneLens.activeRuns().length, 1);
    assert.equal(await vscode.commands.executeCommand(Commands.stopSession, config), true);
    const record = await finished;
    assert.equal(record.status, 'cancelled');
    assert.equal(fs.existsSync(inWorkspace('out', 'slow')), false, 'no output folder');
    assert.deepEqual(leftovers(inWorkspace('out')), []);
    assert.deepEqual(leftovers(workspace()), []);
    assert.equal(pruneLens.activeRuns().length, 0);
  });

  test('an engine that dies mid-run becomes an error and sessions keep working', async () => {
    const config = vscode.Uri.file(inWorkspace('slow.prune.json'));
    const training = nextEvent(pruneLens, (e) => e.type === 'step' || e.type === 'epoch');
    const finished = vscode.commands.executeCommand<RunRecord>(Commands.runConfig, config);
    await training;
    // Kill the engine the way the kernel's OOM killer would: SIGKILL, no goodbye.
    const engines = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n').filter((line) => line.includes('engine.js')).map((line) => Number(line.trim().split(/\s+/)[0]));
    assert.ok(engines.length >= 1, 'an engine process runs');
    for (const pid of engines) process.kill(pid, 'SIGKILL');
    const record = await finished;
    assert.equal(record.status, 'error');
    assert.match(record.error ?? '', /engine .*(killed|SIGKILL)/i);
    const again = await vscode.commands.executeCommand<RunRecord>(Commands.dryRunConfig, vscode.Uri.file(inWorkspace('tiny.prune.json')));
    assert.equal(again.status, 'done', again.error);
  });

  test('Analyze Model reports every layer with its prunability and writes nothing', async () => {
    const before = fs.readdirSync(inWorkspace('tiny')).sort();
    const result = await vscode.commands.executeCommand<AnalysisResult>(Commands.analyzeModel, vscode.Uri.file(inWorkspace('tiny', 'model.json')));
    assert.equal(result.outcome.type, 'done');
    const layers = result.layers?.layers ?? [];
    assert.deepEqual(layers.map((l) => [l.name, l.status]), [['conv1', 'prunable'], ['conv2', 'prunable'], ['logits', 'blocked']]);
    assert.deepEqual(layers.map((l) => l.channels), [8, 12, 3]);
    assert.deepEqual(fs.readdirSync(inWorkspace('tiny')).sort(), before);
  });

  test('Analyze Model on a Keras .keras file reports its layers and groups and writes nothing', async () => {
    const before = fs.readdirSync(inWorkspace('keras')).sort();
    const result = await vscode.commands.executeCommand<AnalysisResult>(Commands.analyzeModel, vscode.Uri.file(inWorkspace('keras', 'tiny_cnn.keras')));
    assert.equal(result.outcome.type, 'done', result.outcome.type === 'error' ? result.outcome.message : '');
    const layers = (result.layers?.layers ?? []).filter((l) => /^(Conv2D|Dense)$/.test(l.type));
    assert.deepEqual(layers.map((l) => [l.name, l.status, l.channels]), [['conv2d', 'prunable', 8], ['conv2d_1', 'prunable', 12], ['dense', 'blocked', 5]]);
    assert.deepEqual(fs.readdirSync(inWorkspace('keras')).sort(), before);
  });

  test('an invalid config shows diagnostics for the missing model and the impossible target', async () => {
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(inWorkspace('invalid.prune.json')));
    const diagnostics = await waitFor(() => {
      const found = pruneLensDiagnostics('invalid.prune.json');
      return found.length >= 1 ? found : undefined;
    }, 'PruneLens diagnostics on invalid.prune.json');
    const byField = new Map(diagnostics.map((d) => [String(d.code), d]));
    assert.match(byField.get('model')?.message ?? '', /Model file not found: missing\/model\.json/);
    const text = fs.readFileSync(inWorkspace('invalid.prune.json'), 'utf8');
    const modelLine = text.split('\n').findIndex((line) => line.includes('"model"'));
    assert.equal(byField.get('model')!.range.start.line, modelLine, 'the diagnostic sits on the model field');
    // The JSON schema (jsonValidation contribution) reports the range too, through VS Code's JSON support.
    const schemaProblem = await waitFor(
      () => vscode.languages.getDiagnostics(vscode.Uri.file(inWorkspace('invalid.prune.json'))).find((d) => d.source !== 'PruneLens' && /1\.5|maximum|exclusive/i.test(d.message)),
      'a schema diagnostic from the JSON language service',
    );
    assert.ok(schemaProblem);
    // One diagnostic per mistake: the impossible target is the schema's finding alone.
    const targetLine = text.split('\n').findIndex((line) => line.includes('"flopsReduction"'));
    const onTarget = vscode.languages.getDiagnostics(vscode.Uri.file(inWorkspace('invalid.prune.json'))).filter((d) => d.range.start.line === targetLine);
    assert.equal(onTarget.length, 1, onTarget.map((d) => `${d.source}: ${d.message}`).join(' | '));
    // A config with known errors is not run: the lens says so, the command refuses.
    await codeLenses('invalid.prune.json');
    const all = (await vscode.commands.executeCommand<vscode.CodeLens[]>('vscode.executeCodeLensProvider', vscode.Uri.file(inWorkspace('invalid.prune.json')))) ?? [];
    const top = all.filter((l) => l.range.start.line === 0).map((l) => l.command?.title ?? '');
    assert.ok(!top.includes('▶ Run'), `top lenses: ${top.join(', ')}`);
    assert.match(top[0], /^\$\(error\) Not runnable: fix (the error|\d+ errors) first$/);
    const runsBefore = pruneLens.runs().length;
    assert.equal(await vscode.commands.executeCommand(Commands.runConfig, vscode.Uri.file(inWorkspace('invalid.prune.json'))), undefined);
    assert.equal(await vscode.commands.executeCommand(Commands.runVariant, vscode.Uri.file(inWorkspace('invalid.prune.json')), 'goprune'), undefined);
    assert.equal(pruneLens.runs().length, runsBefore, 'nothing started');
  });

  test('an output folder equal to the model folder and an unreachable channel ratio are flagged', async () => {
    const diagnostics = await pruneLens.checkConfig(vscode.Uri.file(inWorkspace('same-output.prune.json')));
    const codes = diagnostics.map((d) => String(d.code));
    assert.ok(codes.includes('output'), `codes: ${codes.join(', ')}`);
    const ratio = diagnostics.find((d) => d.code === 'target.channelRatio');
    assert.ok(ratio, `codes: ${codes.join(', ')}`);
    assert.match(ratio.message, /impossible for this model/);
  });

  test('data whose shape does not fit the model input is flagged', async () => {
    const npy = await pruneLens.checkConfig(vscode.Uri.file(inWorkspace('shape-mismatch.prune.json')));
    assert.match(npy.find((d) => d.code === 'data.x')?.message ?? '', /\[10, 10, 1\].*model input is \[8, 8, 1\]/);
    const mnist = await pruneLens.checkConfig(vscode.Uri.file(inWorkspace('mnist-mismatch.prune.json')));
    assert.match(mnist.find((d) => d.code === 'data.name')?.message ?? '', /28×28×1 but the model input is \[8, 8, 1\]/);
    const valid = await pruneLens.checkConfig(vscode.Uri.file(inWorkspace('tiny.prune.json')));
    assert.deepEqual(valid.map((d) => d.message), []);
  });
});
