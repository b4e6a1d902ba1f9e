import { stat } from 'node:fs/promises';
import { findNodeAtLocation, parseTree } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import type { LayersEvent } from '../protocol/events.js';
import { CONFIG_GLOB, DIAGNOSTIC_SOURCE } from './constants.js';
import type { ConfigProblem } from '../engine/config/index.js';
import { checkConfigText, type ModelCapacity } from './configChecks.js';
import type { AnalysisResult } from './sessions.js';

export function isPruneConfig(uri: vscode.Uri): boolean {
  return uri.scheme === 'file' && uri.path.endsWith('.prune.json');
}

/**
 * Model analyses for the diagnostics, cached per model file and modification time, and run one
 * at a time: each is an engine process, and opening a workspace checks every config in it.
 */
export class CapacityCache {
  private readonly cache = new Map<string, { mtimeMs: number; capacity: Promise<ModelCapacity | undefined> }>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly analyze: (modelPath: string) => Promise<AnalysisResult>) {}

  async capacityOf(modelPath: string): Promise<ModelCapacity | undefined> {
    const { mtimeMs } = await stat(modelPath);
    const hit = this.cache.get(modelPath);
    if (hit && hit.mtimeMs === mtimeMs) return hit.capacity;
    const capacity = this.queue
      .then(() => this.analyze(modelPath))
      .then((result) => (result.layers ? capacityFromLayers(result.layers, result.start?.model.maxReduction) : undefined));
    this.queue = capacity.catch(() => undefined);
    this.cache.set(modelPath, { mtimeMs, capacity });
    // A failed analysis is not remembered: the next check tries again.
    void capacity.then((value) => value === undefined && this.cache.get(modelPath)?.capacity === capacity && this.cache.delete(modelPath));
    return capacity;
  }
}

export function capacityFromLayers(event: LayersEvent, maxReduction?: { flops: number; params: number }): ModelCapacity {
  const groups = new Set<number>();
  for (const layer of event.layers) if (layer.status !== 'blocked' && layer.group !== undefined) groups.add(layer.group);
  return { prunableChannels: event.totals.prunableChannels, groups: groups.size, maxFlopsReduction: maxReduction?.flops, maxParamsReduction: maxReduction?.params };
}

/**
 * Diagnostics for `*.prune.json` beyond the JSON schema (which VS Code's JSON support checks
 * through the `jsonValidation` contribution): missing files, unsafe output, impossible targets,
 * data shapes that do not fit the model. Open documents are checked as they change; other
 * config files in the workspace when they or any model file change on disk.
 */
export class ConfigDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('prunelens');
  private readonly disposables: vscode.Disposable[] = [this.collection];
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly generation = new Map<string, number>();

  constructor(private readonly capacities: CapacityCache, private readonly log: vscode.LogOutputChannel) {
    const watcher = vscode.workspace.createFileSystemWatcher('**/{*.prune.json,model.json,*.keras,*.h5,*.hdf5,*.onnx,*.npy}');
    const onDisk = (uri: vscode.Uri) => (isPruneConfig(uri) ? this.schedule(uri) : this.recheckAll());
    this.disposables.push(
      watcher,
      watcher.onDidCreate(onDisk),
      watcher.onDidChange(onDisk),
      watcher.onDidDelete((uri) => (isPruneConfig(uri) ? this.collection.delete(uri) : this.recheckAll())),
      vscode.workspace.onDidOpenTextDocument((doc) => isPruneConfig(doc.uri) && this.schedule(doc.uri)),
      vscode.workspace.onDidChangeTextDocument((e) => isPruneConfig(e.document.uri) && this.schedule(e.document.uri)),
    );
    void this.recheckAll();
  }

  /** Checks one config now; resolves with its diagnostics (used by tests and commands). */
  async check(uri: vscode.Uri): Promise<readonly vscode.Diagnostic[]> {
    const key = uri.toString();
    const generation = (this.generation.get(key) ?? 0) + 1;
    this.generation.set(key, generation);
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === key);
    let text: string;
    try {
      text = open ? open.getText() : Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
    } catch {
      this.collection.delete(uri);
      return [];
    }
    const checks = await checkConfigText(text, uri.fsPath, (model) => this.capacities.capacityOf(model)).catch((err) => {
      this.log.warn(`Could not check ${uri.fsPath}: ${(err as Error).message}`);
      return [] as ConfigProblem[];
    });
    // A newer edit started its own check meanwhile; its result wins.
    if (this.generation.get(key) !== generation) return this.collection.get(uri) ?? [];
    const diagnostics = checks.map((c) => toDiagnostic(text, c));
    this.collection.set(uri, diagnostics);
    return diagnostics;
  }

  private schedule(uri: vscode.Uri): void {
    const key = uri.toString();
    clearTimeout(this.pending.get(key));
    this.pending.set(key, setTimeout(() => {
      this.pending.delete(key);
      void this.check(uri);
    }, 300));
  }

  private async recheckAll(): Promise<void> {
    const uris = await vscode.workspace.findFiles(CONFIG_GLOB, '**/node_modules/**', 200);
    for (const uri of uris) this.schedule(uri);
  }

  dispose(): void {
    for (const timer of this.pending.values()) clearTimeout(timer);
    for (const d of this.disposables) d.dispose();
  }
}

function toDiagnostic(text: string, check: ConfigProblem): vscode.Diagnostic {
  const diagnostic = new vscode.Diagnostic(rangeOf(text, check.path), check.message, check.severity === 'error' ? vscode.DiagnosticSeverity.Error : vscode.DiagnosticSeverity.Warning);
  diagnostic.source = DIAGNOSTIC_SOURCE;
  diagnostic.code = check.path.join('.') || undefined;
  return diagnostic;
}

/** The range of the value at a JSON path (or of its closest existing parent). */
export function rangeOf(text: string, jsonPath: (string | number)[]): vscode.Range {
  const root = parseTree(text);
  let node = root;
  for (let depth = jsonPath.length; depth >= 0 && root; depth--) {
    node = findNodeAtLocation(root, jsonPath.slice(0, depth));
    if (node) break;
  }
  if (!node || node === root) return new vscode.Range(0, 0, 0, 0);
  return new vscode.Range(positionAt(text, node.offset), positionAt(text, node.offset + node.length));
}

function positionAt(text: string, offset: number): vscode.Position {
  const before = text.slice(0, offset);
  const line = before.split('\n').length - 1;
  return new vscode.Position(line, offset - (before.lastIndexOf('\n') + 1));
}
