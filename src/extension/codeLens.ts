import { findNodeAtLocation, parseTree } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import { Commands } from './constants.js';
import { METHOD_INFO } from '../protocol/methods.js';
import type { SessionManager } from './sessions.js';
import { variantFolderNote } from './results.js';

/**
 * Code lenses on `*.prune.json`: run / dry run / open last report at the top, and one
 * "▶ <Method>" per method on the `method` line, which runs the same config with that method
 * into its own output folder, after a "Sensitivity" lens that analyses the config's channel groups.
 * While a session of the config runs, the top offers Stop instead.
 */
export class PruneConfigCodeLensProvider implements vscode.CodeLensProvider, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.changed.event;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly sessions: SessionManager) {
    this.subscription = vscode.Disposable.from(
      sessions.onDidChangeActive(() => this.changed.fire()),
      // Run lenses follow the config's errors: refused while it has any.
      vscode.languages.onDidChangeDiagnostics((e) => e.uris.some((u) => u.path.endsWith('.prune.json')) && this.changed.fire()),
    );
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const top = new vscode.Range(0, 0, 0, 0);
    const uri = document.uri;
    const lenses: vscode.CodeLens[] = [];
    const errors = vscode.languages.getDiagnostics(uri).filter((d) => d.severity === vscode.DiagnosticSeverity.Error).sort((a, b) => a.range.start.line - b.range.start.line);
    if (this.sessions.isRunning(uri.fsPath)) {
      lenses.push(new vscode.CodeLens(top, { title: '$(sync~spin) Running… ■ Stop', command: Commands.stopSession, arguments: [uri], tooltip: 'Cancel the running session; nothing is written' }));
    } else if (errors.length) {
      const first = errors[0];
      lenses.push(new vscode.CodeLens(top, {
        title: `$(error) Not runnable: ${errors.length === 1 ? 'fix the error' : `fix ${errors.length} errors`} first`,
        command: 'workbench.actions.view.problems',
        tooltip: `Line ${first.range.start.line + 1}: ${first.message}`,
      }));
    } else {
      lenses.push(
        new vscode.CodeLens(top, { title: '▶ Run', command: Commands.runConfig, arguments: [uri], tooltip: 'Prune the model as this config says' }),
        new vscode.CodeLens(top, { title: 'Dry run', command: Commands.dryRunConfig, arguments: [uri], tooltip: 'Analyse prunability and the target without training or writing' }),
      );
    }
    lenses.push(new vscode.CodeLens(top, { title: 'Open last report', command: Commands.openLastReport, arguments: [uri], tooltip: 'Open pruning-report.json of the last finished run' }));

    const root = parseTree(document.getText());
    const methodNode = root && findNodeAtLocation(root, ['method']);
    const outputValue = root && findNodeAtLocation(root, ['output'])?.value;
    const output = typeof outputValue === 'string' && outputValue ? outputValue : 'output';
    if (methodNode?.parent) {
      const line = document.positionAt(methodNode.parent.offset).line;
      const range = new vscode.Range(line, 0, line, 0);
      lenses.push(this.sessions.isAnalysingSensitivity(uri.fsPath)
        ? new vscode.CodeLens(range, { title: '$(sync~spin) Sensitivity…', command: Commands.showPanel, tooltip: 'Sensitivity analysis is running; its curves fill the PruneLens panel' })
        : new vscode.CodeLens(range, {
          title: '$(pulse) Sensitivity',
          command: Commands.analyzeSensitivity,
          arguments: [uri],
          tooltip: 'Measure how much each channel group\'s metric falls as its weakest channels are removed; curves in the panel, report beside the config',
        }));
      for (const method of METHOD_INFO) {
        lenses.push(new vscode.CodeLens(range, {
          title: `▶ ${method.label}`,
          command: Commands.runVariant,
          arguments: [uri, method.id],
          tooltip: `Run this config with ${method.label} (${method.description}). ${variantFolderNote(output, method.id)}${errors.length ? ` Not runnable until the config's ${errors.length === 1 ? 'error is' : 'errors are'} fixed.` : ''}`,
        }));
      }
    }
    return lenses;
  }

  dispose(): void {
    this.subscription.dispose();
    this.changed.dispose();
  }
}
