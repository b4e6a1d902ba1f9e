import * as path from 'node:path';
import { parse } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import { METHOD_INFO } from '../protocol/methods.js';
import { readModelInputShape, readModelOutputUnits } from '../engine/config/index.js';
import { dataOptions, describeDataSection, syntheticClasses, type DataChoice, type DataOption, type ModelShape, type PruneChoices, type TargetChoice } from './newConfig.js';

interface TargetItem extends vscode.QuickPickItem {
  target?: TargetChoice;
}

const TARGET_ITEMS: TargetItem[] = [
  { label: 'FLOPs −30%', description: 'Light: usually no visible accuracy loss', target: { flopsReduction: 0.3 } },
  { label: 'FLOPs −50%', description: 'Halve the forward FLOPs', target: { flopsReduction: 0.5 } },
  { label: 'FLOPs −70%', description: 'Aggressive: expect to fine-tune longer', target: { flopsReduction: 0.7 } },
  { label: 'Params −50%', description: 'Halve the parameter count', target: { paramsReduction: 0.5 } },
  { label: 'Custom…', description: 'FLOPs, params or channel fraction of your choice' },
];

/** Asks for method and target; undefined when the user backs out. */
export async function pickPruneChoices(modelName: string): Promise<PruneChoices | undefined> {
  const method = await vscode.window.showQuickPick(
    METHOD_INFO.map((m) => ({ label: m.label, description: m.description, id: m.id })),
    { title: `Prune ${modelName} (1/3): method`, placeHolder: 'Pruning method', matchOnDescription: true },
  );
  if (!method) return undefined;
  const picked = await vscode.window.showQuickPick(TARGET_ITEMS, { title: `Prune ${modelName} (2/3): how much to remove`, placeHolder: 'Target' });
  if (!picked) return undefined;
  const target = picked.target ?? (await askCustomTarget());
  return target ? { method: method.id, target } : undefined;
}

async function askCustomTarget(): Promise<TargetChoice | undefined> {
  const text = await vscode.window.showInputBox({
    title: 'Custom pruning target',
    prompt: 'What to remove and how much, e.g. "flops 0.4", "params 0.25" or "channels 0.5"',
    placeHolder: 'flops 0.4',
    validateInput: (value) => (parseTarget(value) ? undefined : 'Write flops, params or channels and a fraction between 0 and 1, e.g. "flops 0.4"'),
  });
  return text === undefined ? undefined : parseTarget(text);
}

export function parseTarget(text: string): TargetChoice | undefined {
  const match = /^\s*(flops|params|channels)\s*[:=]?\s*(\d*\.?\d+)\s*(%?)\s*$/i.exec(text);
  if (!match) return undefined;
  let amount = Number(match[2]);
  if (match[3] === '%' || amount >= 1) amount /= 100;
  if (!(amount > 0 && amount < 1)) return undefined;
  const kind = match[1].toLowerCase();
  return kind === 'flops' ? { flopsReduction: amount } : kind === 'params' ? { paramsReduction: amount } : { channelRatio: amount };
}

interface DataItem extends vscode.QuickPickItem {
  option?: DataOption;
}

/**
 * The data step: what to fine-tune and measure the model on. Always asked, the sensible default first;
 * folders and .npy files are picked in a file dialog. With `existing`, keeping its data comes first.
 * Nothing is asked about losses: data without labels trains by distillation, which the caller writes and says.
 * Undefined when the user backs out.
 */
export async function pickDataChoice(modelPath: string, modelName: string, method: string, existing?: { name: string; data: unknown }): Promise<DataChoice | 'keep' | undefined> {
  const model: ModelShape = {
    inputShape: await readModelInputShape(modelPath).catch(() => undefined),
    classes: await readModelOutputUnits(modelPath).catch(() => undefined),
  };
  const items: DataItem[] = dataOptions(model, method).map((option) => ({ label: option.label, description: option.description, option }));
  if (existing) items.unshift({ label: `Keep the data of ${existing.name}`, description: describeDataSection(existing.data) });
  const picked = await vscode.window.showQuickPick(items, {
    title: `Prune ${modelName} (3/3): data to fine-tune and measure the model on`,
    placeHolder: 'Data',
    matchOnDescription: true,
  });
  if (!picked) return undefined;
  const option = picked.option;
  if (!option) return 'keep';
  const folder = vscode.Uri.file(path.dirname(modelPath));
  switch (option.kind) {
    case 'builtin':
      return { kind: 'builtin', name: option.name };
    case 'none':
      return { kind: 'none' };
    case 'synthetic':
      return { kind: 'synthetic', classes: syntheticClasses(model) };
    case 'imagefolder': {
      const [dir] = (await vscode.window.showOpenDialog({
        title: 'Data folder: one subfolder of images per class, or the images themselves when they have no labels', openLabel: 'Use this folder', defaultUri: folder,
        canSelectFolders: true, canSelectFiles: false, canSelectMany: false,
      })) ?? [];
      return dir ? { kind: 'imagefolder', path: dir.fsPath } : undefined;
    }
    case 'npy': {
      const npy = { 'NumPy arrays': ['npy'] };
      const [x] = (await vscode.window.showOpenDialog({ title: 'Inputs (x.npy)', openLabel: 'Use as inputs', defaultUri: folder, filters: npy, canSelectMany: false })) ?? [];
      if (!x) return undefined;
      const [y] = (await vscode.window.showOpenDialog({ title: 'Labels (y.npy)', openLabel: 'Use as labels', defaultUri: vscode.Uri.file(path.dirname(x.fsPath)), filters: npy, canSelectMany: false })) ?? [];
      return y ? { kind: 'npy', x: x.fsPath, y: y.fsPath } : undefined;
    }
    case 'npy-unlabelled': {
      const [x] = (await vscode.window.showOpenDialog({ title: 'Inputs (x.npy), no labels', openLabel: 'Use as inputs', defaultUri: folder, filters: { 'NumPy arrays': ['npy'] }, canSelectMany: false })) ?? [];
      return x ? { kind: 'npy', x: x.fsPath } : undefined;
    }
  }
}

export type ExistingConfigChoice = 'update' | 'keep' | undefined;

export async function askAboutExistingConfig(configPath: string, choices: PruneChoices): Promise<ExistingConfigChoice> {
  const name = path.basename(configPath);
  const items: (vscode.QuickPickItem & { choice: ExistingConfigChoice })[] = [
    { label: `Update ${name}`, description: `set method ${choices.method}, the new target and (next) the data; keep everything else`, choice: 'update' },
    { label: `Run ${name} as it is`, description: 'ignore the choices just made', choice: 'keep' },
  ];
  const picked = await vscode.window.showQuickPick(items, { title: `${name} already exists`, placeHolder: 'Update it or run it unchanged?' });
  return picked?.choice;
}

/** Reads a config's output folder (absolute) for variant runs. */
export function configuredOutput(configText: string, configPath: string): string | undefined {
  const value = parse(configText) as { output?: unknown } | undefined;
  return typeof value?.output === 'string' ? path.resolve(path.dirname(configPath), value.output) : undefined;
}
