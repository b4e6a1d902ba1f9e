// End-to-end tests of PruneLens in a real VS Code (code-server) driven by headless Chromium:
// setup (cached), fixtures, build, the integration suite inside the extension host, then the
// UI tests through the browser. Prints "N passed, N failed" last; exits non-zero on failure.
// Both suites run the extension as users get it: `npm run package`'s .vsix, installed with
// `code-server --install-extension`. Activation time and the extension host's memory go to test-results/e2e-metrics.json.
// Options: --integration-only, --ui-only, --skip-build (reuse the .vsix the last run packaged), --grep TEXT (only the UI
// tests whose titles contain TEXT, after the one that opens the workbench).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { E2E_ROOT, REPO, RESULTS_DIR, activationTimes, extensionHostMemory, installVsix, launchBrowser, seconds, startCodeServer } from './harness.mjs';
import { runUiTests } from './ui.mjs';

const grepAt = process.argv.indexOf('--grep');
const grep = grepAt >= 0 ? process.argv[grepAt + 1] : undefined;
const only = process.argv.includes('--integration-only') ? 'integration' : process.argv.includes('--ui-only') ? 'ui' : undefined;
const timings = {};
const metrics = {};
const results = [];
let t = Date.now();
const lap = (name) => { timings[name] = Date.now() - t; t = Date.now(); };

function step(command, args, what) {
  const r = spawnSync(command, args, { cwd: REPO, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`e2e: ${what} failed (exit ${r.status})`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

step('bash', ['scripts/e2e-setup.sh'], 'setup');
lap('setup');

// Fresh fixture workspaces, one per suite so their outputs never meet.
for (const name of readdirSync(E2E_ROOT)) if (/^workspace-\d+$/.test(name)) rmSync(join(E2E_ROOT, name), { recursive: true, force: true });
const integrationWorkspace = join(E2E_ROOT, 'workspace-1');
const uiWorkspace = join(E2E_ROOT, 'workspace-2');
step(process.execPath, ['test/e2e/fixtures.mjs', integrationWorkspace], 'fixtures');
step(process.execPath, ['test/e2e/fixtures.mjs', uiWorkspace], 'fixtures');
lap('fixtures');

const vsix = join(E2E_ROOT, 'prunelens.vsix');
if (!process.argv.includes('--skip-build') || !existsSync(vsix)) step(process.execPath, ['scripts/package.mjs', '--out', vsix], 'package');
metrics.vsixMb = Number((statSync(vsix).size / 1e6).toFixed(2));
const suiteOut = join(E2E_ROOT, 'out', 'suite');
rmSync(suiteOut, { recursive: true, force: true });
const suiteDir = join(REPO, 'test', 'e2e', 'suite');
await esbuild.build({
  entryPoints: readdirSync(suiteDir).filter((f) => f.endsWith('.ts')).map((f) => join(suiteDir, f)),
  outdir: suiteOut, bundle: true, platform: 'node', format: 'cjs', target: 'node20', sourcemap: 'inline',
  // ESM entries first: jsonc-parser's UMD one (through the config loader the suite validates with) hides its requires from the bundler.
  mainFields: ['module', 'main'],
  external: ['vscode', 'mocha'], logLevel: 'warning',
});
lap('build');
mkdirSync(RESULTS_DIR, { recursive: true });

if (only !== 'ui') {
  const resultFile = join(E2E_ROOT, 'out', 'integration-results.json');
  rmSync(resultFile, { force: true });
  const runDir = join(E2E_ROOT, 'run-integration');
  rmSync(runDir, { recursive: true, force: true });
  // The suite runs against the installed package: the development path is the folder the .vsix was unpacked to.
  const installed = installVsix(runDir, vsix);
  const server = await startCodeServer({ runDir, smoke: true, env: { PRUNELENS_E2E_RESULTS: resultFile } });
  const browser = await launchBrowser();
  try {
    const authority = `127.0.0.1:${server.port}`;
    const payload = [
      ['extensionDevelopmentPath', `vscode-remote://${authority}${installed}`],
      ['extensionTestsPath', `vscode-remote://${authority}${join(suiteOut, 'index')}`],
    ];
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // The workbench forwards the extension host's console (mocha's reporter) and the suite's exit code.
    await page.exposeFunction('codeAutomationLog', (type, args) => {
      // The workbench forwards console arguments unformatted: fill in mocha's %s / %d placeholders.
      const [format, ...rest] = Array.isArray(args) ? args.map(String) : [String(args)];
      let used = 0;
      const line = format.replace(/%[sdi]/g, () => (used < rest.length ? rest[used++] : '')) + rest.slice(used).map((r) => ` ${r}`).join('');
      if (/^\s*(✔|✓|\d+\)|\d+ passing|\d+ failing|PruneLens in VS Code|Error|AssertionError)/.test(line)) console.log(`  [host] ${line.split('\n')[0]}`);
    });
    let exitCode;
    const exited = new Promise((resolveExit) => page.exposeFunction('codeAutomationExit', (code) => { exitCode = code; resolveExit(); }));
    await page.goto(server.url(`folder=${encodeURIComponent(integrationWorkspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`));
    const timeout = new Promise((r) => setTimeout(r, 360000));
    await Promise.race([exited, timeout]);
    await page.screenshot({ path: join(RESULTS_DIR, 'integration-finished.png') }).catch(() => {});
    if (existsSync(resultFile)) {
      const suite = JSON.parse(readFileSync(resultFile, 'utf8'));
      for (const test of suite.tests) results.push({ suite: 'integration', ...test });
    } else {
      results.push({ suite: 'integration', title: 'integration suite', state: 'failed', durationMs: 0, error: exitCode === undefined ? 'timed out' : `suite exited with ${exitCode} and wrote no results` });
    }
  } finally {
    await browser.close();
    await server.stop();
  }
  metrics.integration = activationTimes(runDir);
  lap('integration');
}

if (only !== 'integration') {
  const runDir = join(E2E_ROOT, 'run-ui');
  rmSync(runDir, { recursive: true, force: true });
  installVsix(runDir, vsix);
  const server = await startCodeServer({ runDir, smoke: false });
  const browser = await launchBrowser();
  try {
    // The extension host's memory once the workbench is open, and after every UI test (sessions, analyses, the
    // panel) while its window is still open: the host ends with the window.
    metrics.uiExtensionHost = {};
    const measure = (moment) => { metrics.uiExtensionHost[moment] = extensionHostMemory(server.pid) ?? 'no extension host process found'; };
    results.push(...(await runUiTests({ browser, url: server.url(`folder=${encodeURIComponent(uiWorkspace)}`), workspace: uiWorkspace, resultsDir: RESULTS_DIR, grep, measure })).map((r) => ({ suite: 'ui', ...r })));
  } finally {
    await browser.close();
    await server.stop();
  }
  metrics.ui = activationTimes(runDir);
  lap('ui');
}

console.log('');
for (const r of results) {
  console.log(`${r.state === 'passed' ? 'PASS' : 'FAIL'} [${r.suite}] ${r.title} (${seconds(r.durationMs)})`);
  if (r.error) console.log(`     ${r.error.split('\n').slice(0, 6).join('\n     ')}`);
}
console.log(`timings: ${Object.entries(timings).map(([k, v]) => `${k} ${seconds(v)}`).join(', ')}`);
console.log(`metrics: ${JSON.stringify(metrics)}`);
writeFileSync(join(RESULTS_DIR, 'e2e-metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
const passed = results.filter((r) => r.state === 'passed').length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
