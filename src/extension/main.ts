import * as vscode from 'vscode';
import type { EngineEvent } from '../protocol/events.js';
import * as commands from './commands.js';
import { Commands, Views } from './constants.js';
import { Ctx } from './ctx.js';
import type { RunRecord } from './runStore.js';

/** What the extension exports to other extensions and to its integration tests. */
export interface PruneLensApi {
  onDidEngineEvent: vscode.Event<{ runId: string; event: EngineEvent }>;
  activeRuns(): RunRecord[];
  runs(): RunRecord[];
  /** Re-checks a config file now and returns its PruneLens diagnostics. */
  checkConfig(uri: vscode.Uri): Promise<readonly vscode.Diagnostic[]>;
  /** The status bar's session text: empty when no session runs. */
  statusText(): string;
}

let ctx: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): PruneLensApi {
  ctx = new Ctx(context, commands.handlePanelMessage, commands.handleReportMessage);
  context.subscriptions.push(ctx);

  ctx.registerCommand(Commands.pruneModel, commands.pruneModel);
  ctx.registerCommand(Commands.analyzeModel, commands.analyzeModel);
  ctx.registerCommand(Commands.runConfig, commands.runConfig);
  ctx.registerCommand(Commands.dryRunConfig, commands.dryRunConfig);
  ctx.registerCommand(Commands.runVariant, commands.runVariant);
  ctx.registerCommand(Commands.openReport, commands.openReport);
  ctx.registerCommand(Commands.openLastReport, commands.openReport);
  ctx.registerCommand(Commands.stopSession, commands.stopSession);
  ctx.registerCommand(Commands.rerun, commands.rerun);
  ctx.registerCommand(Commands.showPanel, commands.showPanel);
  ctx.registerCommand(Commands.analyzeSensitivity, commands.analyzeSensitivity);
  ctx.registerCommand(Commands.openInEditor, commands.openInEditor);
  ctx.registerCommand(Commands.revealOutput, commands.revealOutput);
  ctx.registerCommand(Commands.openPrunedModel, commands.openPrunedModel);
  ctx.registerCommand(Commands.compareWithOriginal, commands.compareWithOriginal);
  ctx.registerCommand(Commands.openConfig, commands.openConfig);
  ctx.registerCommand(Commands.openExample, commands.openExample);
  ctx.registerCommand(Commands.openReportAsJson, commands.openReportAsJsonCommand);
  context.subscriptions.push(
    // The welcome view's tree: empty, so VS Code shows its viewsWelcome buttons.
    vscode.window.registerTreeDataProvider(Views.start, { getChildren: () => [], getTreeItem: (item: vscode.TreeItem) => item }),
  );
  ctx.sessions.initContext();

  const current = ctx;
  ctx.log.info(`PruneLens activated (VS Code ${vscode.version}, Node ${process.versions.node}, ${vscode.workspace.isTrusted ? 'trusted' : 'restricted'} workspace)`);
  return {
    onDidEngineEvent: current.sessions.onDidEvent,
    activeRuns: () => current.sessions.activeRuns(),
    runs: () => current.store.all(),
    checkConfig: (uri) => current.diagnostics.check(uri),
    statusText: () => current.sessions.statusText(),
  };
}

export function deactivate(): void {
  ctx = undefined;
}
