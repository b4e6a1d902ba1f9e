import { getLocation, parseTree, findNodeAtOffset } from 'jsonc-parser/lib/esm/main.js';
import * as vscode from 'vscode';
import { METHOD_INFO } from '../protocol/methods.js';

/**
 * Completion of a config's `method` with each method's label and one-line description beside its id
 * (the schema's completion lists bare ids; its descriptions show only for the focused row).
 */
export class MethodCompletionProvider implements vscode.CompletionItemProvider {
  provideCompletionItems(document: vscode.TextDocument, position: vscode.Position): vscode.CompletionItem[] {
    const text = document.getText();
    const offset = document.offsetAt(position);
    const location = getLocation(text, offset);
    if (location.isAtPropertyKey || location.path.length !== 1 || location.path[0] !== 'method') return [];
    // Replace the whole string value (quotes included) when the cursor is inside one.
    const root = parseTree(text);
    const node = root && findNodeAtOffset(root, offset, true);
    const range = node && node.type === 'string' && node.parent?.type === 'property' && node.parent.children?.[1] === node
      ? new vscode.Range(document.positionAt(node.offset), document.positionAt(node.offset + node.length))
      : undefined;
    return METHOD_INFO.map((method, index) => {
      const item = new vscode.CompletionItem({ label: `"${method.id}"`, description: `${method.label}: ${method.description}` }, vscode.CompletionItemKind.EnumMember);
      item.insertText = `"${method.id}"`;
      item.filterText = `"${method.id}" ${method.label}`;
      item.detail = method.needsData ? `${method.label} · trains on the config's data` : `${method.label} · one-shot, no training besides fine-tuning`;
      item.documentation = new vscode.MarkdownString(`**${method.label}**: ${method.description}.`);
      item.sortText = `0${index}`;
      if (range) item.range = range;
      return item;
    });
  }
}
