/** Reads the VS Code theme's colours (CSS variables on the document) for Chart.js. */
import { DEFAULT_PALETTE, withAlpha, type Palette } from '../charts-data.js';

export function readPalette(root: Element = document.documentElement): Palette {
  const style = getComputedStyle(root);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  const foreground = read('--vscode-foreground', DEFAULT_PALETTE.foreground);
  return {
    foreground,
    grid: withAlpha(read('--vscode-editorWidget-border', foreground), 0.25),
    blue: read('--vscode-charts-blue', DEFAULT_PALETTE.blue),
    green: read('--vscode-charts-green', DEFAULT_PALETTE.green),
    yellow: read('--vscode-charts-yellow', DEFAULT_PALETTE.yellow),
    orange: read('--vscode-charts-orange', DEFAULT_PALETTE.orange),
    red: read('--vscode-charts-red', DEFAULT_PALETTE.red),
    purple: read('--vscode-charts-purple', DEFAULT_PALETTE.purple),
    muted: withAlpha(read('--vscode-disabledForeground', foreground), 0.45),
  };
}

export function readFontFamily(root: Element = document.documentElement): string {
  return getComputedStyle(root).getPropertyValue('--vscode-font-family').trim() || 'system-ui, sans-serif';
}

/** Calls `onChange` when VS Code switches theme (it swaps the body's class and the root's style). */
export function watchTheme(onChange: () => void): MutationObserver {
  const observer = new MutationObserver(onChange);
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style'] });
  return observer;
}
