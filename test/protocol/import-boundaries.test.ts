/**
 * The rooms' import rules (docs/architecture.md), checked on every source file: an import across
 * a boundary fails here, naming the file and the import.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

const ROOT = resolve('.');

interface Import {
  /** The importing file, relative to the repository root. */
  from: string;
  specifier: string;
  /** The imported file relative to the root, for relative imports. */
  file?: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** A relative specifier as the file it names: `./x.js` is x.ts, a folder its index.ts. */
function resolveRelative(from: string, specifier: string): string {
  const base = resolve(ROOT, dirname(from), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, join(base, 'index.ts')];
  const found = candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? base;
  return relative(ROOT, found).split('\\').join('/');
}

const importCache = new Map<string, Import[]>();

function importsOf(file: string): Import[] {
  let imports = importCache.get(file);
  if (!imports) {
    const info = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
    imports = info.importedFiles.map(({ fileName: specifier }) => ({
      from: file, specifier, file: specifier.startsWith('.') ? resolveRelative(file, specifier) : undefined,
    }));
    importCache.set(file, imports);
  }
  return imports;
}

const under = (file: string | undefined, ...prefixes: string[]) => file !== undefined && prefixes.some((p) => file === p || file.startsWith(p.endsWith('/') ? p : `${p}/`));
const packageOf = (specifier: string) => (specifier.startsWith('@') ? specifier.split('/').slice(0, 2) : specifier.split('/').slice(0, 1)).join('/');
const show = (i: Import) => `${i.from} imports ${i.specifier}`;

/** Every import in `dir` that `allowed` refuses. */
function violations(dir: string, allowed: (i: Import) => boolean): string[] {
  return sourceFiles(dir).flatMap(importsOf).filter((i) => !allowed(i)).map(show);
}

/** The files `entry` loads, following relative imports; the package imports on the way. */
function closure(entries: string[]): { files: Set<string>; packages: Import[] } {
  const files = new Set<string>();
  const packages: Import[] = [];
  const visit = (file: string) => {
    if (files.has(file) || !/\.(ts|mts)$/.test(file)) return;
    files.add(file);
    for (const i of importsOf(file)) {
      if (i.file) visit(i.file);
      else packages.push(i);
    }
  };
  entries.forEach(visit);
  return { files, packages };
}

test('the engine never imports vscode, the extension, the CLI or the webview', () => {
  assert.deepEqual(violations('src/engine', (i) => packageOf(i.specifier) !== 'vscode' && !under(i.file, 'src/extension', 'src/cli', 'webview')), []);
});

test('the protocol imports nothing but itself', () => {
  assert.deepEqual(violations('src/protocol', (i) => under(i.file, 'src/protocol')), []);
});

test('the webview imports only itself, the protocol and its browser libraries', () => {
  const libraries = ['chart.js', '@vscode-elements/elements'];
  assert.deepEqual(violations('webview', (i) => (i.file ? under(i.file, 'webview', 'src/protocol') : libraries.includes(packageOf(i.specifier)))), []);
});

test('the extension uses the engine only through protocol/, engine/config/, engine/errors.ts and the engine client', () => {
  const engineDoors = ['src/engine/config', 'src/engine/errors.ts', 'src/engine/process/client.ts'];
  assert.deepEqual(violations('src/extension', (i) => !i.file || under(i.file, 'src/extension', 'src/protocol', ...engineDoors)), []);
});

test('nothing the extension host or the webview loads pulls in tfjs', () => {
  for (const entry of ['src/extension/main.ts', 'webview/main.ts']) {
    const { files, packages } = closure([entry]);
    assert.ok(files.size > 5, `${entry} reaches its modules`);
    assert.deepEqual(packages.filter((i) => packageOf(i.specifier).startsWith('@tensorflow/')).map(show), [], entry);
  }
});

test('the CLI does not import the extension or the webview', () => {
  assert.deepEqual(violations('src/cli', (i) => packageOf(i.specifier) !== 'vscode' && !under(i.file, 'src/extension', 'webview')), []);
});
