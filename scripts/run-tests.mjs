// Runs the node:test suites (TypeScript through tsx). `node scripts/run-tests.mjs [unit|e2e|all] [filter]`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const filter = process.argv[3];

function find(dir) {
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const unitDirs = ['test/engine', 'test/protocol', 'test/cli', 'test/webview'];
const files = unitDirs
  .flatMap((d) => { try { return find(d); } catch { return []; } })
  .filter((f) => !filter || f.includes(filter))
  .sort();

let status = 0;
if (which === 'unit' || which === 'all') {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
  status = r.status ?? 1;
}
if ((which === 'e2e' || which === 'all') && status === 0) {
  try {
    statSync('test/e2e/run.mjs');
    const r = spawnSync(process.execPath, ['test/e2e/run.mjs'], { stdio: 'inherit' });
    status = r.status ?? 1;
  } catch { /* no e2e suite yet */ }
}
process.exit(status);
