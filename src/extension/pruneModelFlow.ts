import * as path from 'node:path';
import { applyEdits, modify, parse } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import { METHOD_INFO } from './constants.js';
import { readModelInputShape, readModelOutputUnits, sampleShapeMatches } from './modelFiles.js';

export type TargetChoice = { flopsReduction: number } | { paramsReduction: number } | { channelRatio: number };

export interface PruneChoices {
  method: string;
  target: TargetChoice;
}

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
    { title: `Prune ${modelName} (1/2): method`, placeHolder: 'Pruning method', matchOnDescription: true },
  );
  if (!method) return undefined;
  const picked = await vscode.window.showQuickPick(TARGET_ITEMS, { title: `Prune ${modelName} (2/2): how much to remove`, placeHolder: 'Target' });
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

/** `<folder>.prune.json` beside `model.json`, or `<name>.prune.json` beside `<name>.model.json`. */
export function configPathFor(modelPath: string): string {
  const dir = path.dirname(modelPath);
  const file = path.basename(modelPath);
  const stem = file === 'model.json' ? path.basename(dir) : file.replace(/[._-]?model\.json$/i, '') || path.basename(dir);
  return path.join(dir, `${stem}.prune.json`);
}

/** A new config with the user's choices and data that fits the model's input. */
export async function newConfigText(modelPath: string, choices: PruneChoices): Promise<string> {
  const inputShape = await readModelInputShape(modelPath).catch(() => undefined);
  const classes = (await readModelOutputUnits(modelPath).catch(() => undefined)) ?? 10;
  const mnistShaped = inputShape !== undefined && sampleShapeMatches([28, 28, 1], inputShape);
  const config = {
    model: `./${path.basename(modelPath)}`,
    method: choices.method,
    target: choices.target,
    output: 'pruned',
    // Real data when the input is MNIST-shaped; otherwise a synthetic task to try the pipeline until "data" points at yours.
    data: mnistShaped ? { format: 'builtin', name: 'mnist', trainLimit: 10000, testLimit: 2000 } : { format: 'synthetic', samples: 512, classes: Math.max(2, classes) },
    train: { epochs: 1 },
    finetune: { epochs: 1 },
  };
  return JSON.stringify(config, null, 2) + '\n';
}

/** The same config with method and target replaced, formatting and other fields kept. */
export function updateConfigText(text: string, choices: PruneChoices): string {
  const options = { formattingOptions: { insertSpaces: true, tabSize: 2 } };
  let updated = applyEdits(text, modify(text, ['method'], choices.method, options));
  updated = applyEdits(updated, modify(updated, ['target'], choices.target, options));
  return updated;
}

export type ExistingConfigChoice = 'update' | 'keep' | undefined;

export async function askAboutExistingConfig(configPath: string, choices: PruneChoices): Promise<ExistingConfigChoice> {
  const name = path.basename(configPath);
  const items: (vscode.QuickPickItem & { choice: ExistingConfigChoice })[] = [
    { label: `Update ${name}`, description: `set method ${choices.method} and the new target, keep everything else`, choice: 'update' },
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
