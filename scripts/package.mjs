// `npm run package`: prunelens-<version>.vsix, made with @vscode/vsce from a production build.
// The package is assembled in a folder of its own (the manifest, README, LICENSE, CHANGELOG, media, schemas, and the
// build's dist/), so it never packs a working dist/ that another build is rewriting. Everything the extension runs is
// bundled into dist/: the package carries no node_modules (--no-dependencies), and package.json's "files" says which
// files go in, for the VSIX and for `npm pack` alike. There is no public repository: vsce is told so, and the
// README's relative links stay as written.
// Options: --out FILE.vsix; --tgz: also `npm pack` the same folder (the prunelens CLI), beside the VSIX;
// --stage DIR (default .cache/package).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const option = (name) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : undefined;
};
const { name, version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const out = resolve(option('--out') ?? join(root, `${name}-${version}.vsix`));
const stage = resolve(option('--stage') ?? join(root, '.cache', 'package'));

function run(command, args, cwd) {
  const r = spawnSync(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error(`package: ${[command, ...args].join(' ')} failed (exit ${r.status})`);
    process.exit(1);
  }
}

// A fresh stage, but the gzipped data set is kept: gzipping MNIST takes a while and its source does not change.
mkdirSync(stage, { recursive: true });
for (const entry of readdirSync(stage)) if (entry !== 'dist') rmSync(join(stage, entry), { recursive: true, force: true });
if (existsSync(join(stage, 'dist'))) {
  for (const entry of readdirSync(join(stage, 'dist'))) if (entry !== 'data') rmSync(join(stage, 'dist', entry), { recursive: true, force: true });
}
for (const entry of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'media', 'schemas']) {
  cpSync(join(root, entry), join(stage, entry), { recursive: true });
}
run(process.execPath, ['scripts/build.mjs', '--production', '--outdir', join(stage, 'dist')], root);
run(process.execPath, [join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies',
  '--allow-missing-repository', '--no-rewrite-relative-links', '--out', out], stage);
console.log(`${out}: ${(statSync(out).size / 1e6).toFixed(1)} MB`);

if (process.argv.includes('--tgz')) {
  const npm = spawnSync('npm', ['pack', '--json', '--ignore-scripts'], { cwd: stage, encoding: 'utf8' });
  if (npm.status !== 0) {
    console.error(`package: npm pack failed (exit ${npm.status})\n${npm.stderr}`);
    process.exit(1);
  }
  const [packed] = JSON.parse(npm.stdout);
  const tgz = join(dirname(out), packed.filename);
  renameSync(join(stage, packed.filename), tgz);
  console.log(`${tgz}: ${(statSync(tgz).size / 1e6).toFixed(1)} MB, ${packed.entryCount} files`);
}
