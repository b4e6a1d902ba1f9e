// Runs the test suites: `node scripts/run-tests.mjs [unit|e2e|all] [filter]`.
// unit: node:test suites (TypeScript through tsx); e2e: the extension in a real VS Code.
// Ends with one line "N passed, N failed" counting both.
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

const which = process.argv[2] ?? 'all';
const filter = process.argv[3];

function find(dir) {
  if (!existsSync(dir)) return [];
  let out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out = out.concat(find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Runs a command, echoing its output, and returns its exit code and output. */
function run(args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const echo = (stream, target) => stream.on('data', (chunk) => {
      output += chunk;
      target.write(chunk);
    });
    echo(child.stdout, process.stdout);
    echo(child.stderr, process.stderr);
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

function count(output, pattern) {
  const matches = [...output.matchAll(pattern)];
  return matches.length ? Number(matches[matches.length - 1][1]) : 0;
}

const unitDirs = ['test/engine', 'test/protocol', 'test/cli', 'test/webview', 'test/extension', 'test/package'];
const files = unitDirs.flatMap(find).filter((f) => !filter || f.includes(filter)).sort();

let passed = 0;
let failed = 0;
let status = 0;
if (which === 'all') {
  // Chromium (the webview rendering tests among the unit suites need it), Node 24 and code-server: cached, about a second when present.
  const setup = spawnSync('bash', ['scripts/e2e-setup.sh'], { stdio: 'inherit' });
  if (setup.status !== 0) {
    console.log('\n0 passed, 1 failed (scripts/e2e-setup.sh failed)');
    process.exit(setup.status ?? 1);
  }
}
if (which === 'unit' || which === 'all') {
  const r = await run(['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
  passed += count(r.output, /ℹ pass (\d+)/g);
  failed += count(r.output, /ℹ fail (\d+)/g);
  if (r.code !== 0) status = r.code;
}
if ((which === 'e2e' || which === 'all') && existsSync('test/e2e/run.mjs')) {
  const r = await run(['test/e2e/run.mjs']);
  passed += count(r.output, /^(\d+) passed, \d+ failed$/gm);
  failed += count(r.output, /^\d+ passed, (\d+) failed$/gm);
  if (r.code !== 0) status = r.code;
}
if (status !== 0 && failed === 0) failed = 1;
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(status);
