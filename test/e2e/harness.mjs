// Shared pieces of the e2e runner: code-server processes, the Chromium browser, timing.
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const E2E_ROOT = process.env.E2E_ROOT ?? join(REPO, '.cache', 'e2e');
export const RESULTS_DIR = join(REPO, 'test-results');

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

/** Environment with Node 24 and code-server first on PATH and nothing written under $HOME. */
export function e2eEnv(extra = {}) {
  return {
    ...process.env,
    PATH: `${join(E2E_ROOT, 'node24', 'package', 'bin')}:${join(E2E_ROOT, 'cs', 'bin')}:${process.env.PATH}`,
    XDG_CONFIG_HOME: join(E2E_ROOT, 'xdg', 'config'),
    XDG_DATA_HOME: join(E2E_ROOT, 'xdg', 'data'),
    XDG_CACHE_HOME: join(E2E_ROOT, 'xdg', 'cache'),
    ...extra,
  };
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

const USER_SETTINGS = {
  'workbench.startupEditor': 'none',
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  'workbench.colorTheme': 'Default Dark Modern',
  'window.menuBarVisibility': 'compact',
  'editor.minimap.enabled': false,
  'git.openRepositoryInParentFolders': 'never',
};

/**
 * Starts code-server in its own process group with a fresh profile under `runDir`.
 * smoke: enables the smoke-test driver, required for extensionTestsPath suites (it hides toasts).
 */
export async function startCodeServer({ runDir, smoke, env = {} }) {
  const port = await freePort();
  const userData = join(runDir, 'user-data');
  const extensionsDir = join(runDir, 'extensions');
  mkdirSync(join(userData, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(join(userData, 'User', 'settings.json'), JSON.stringify(USER_SETTINGS, null, 2));
  const logFile = join(runDir, 'code-server.log');
  const out = openSync(logFile, 'w');
  const args = [
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none',
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', userData, '--extensions-dir', extensionsDir, '--ignore-last-opened',
    ...(smoke ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
  ];
  const child = spawn(join(E2E_ROOT, 'cs', 'bin', 'code-server'), args, { env: e2eEnv(env), detached: true, stdio: ['ignore', out, out] });
  const started = Date.now();
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (child.exitCode !== null || Date.now() - started > 30000) {
      throw new Error(`code-server did not start:\n${readFileSync(logFile, 'utf8').slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    extensionsDir,
    url: (query) => `http://127.0.0.1:${port}/?${query}`,
    /** Stops the whole process group: server, extension host, watchers, engine processes. */
    async stop() {
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* already gone */ }
      await new Promise((r) => setTimeout(r, 500));
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    },
  };
}

/** Registers the repository itself as an installed extension (no packaging, node_modules in place). */
export function installFromRepository(extensionsDir) {
  const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  writeFileSync(join(extensionsDir, 'extensions.json'), JSON.stringify([{
    identifier: { id: `${manifest.publisher}.${manifest.name}` },
    version: manifest.version,
    location: { $mid: 1, scheme: 'file', path: REPO },
    metadata: { installedTimestamp: Date.now(), source: 'vsix', pinned: true },
  }]));
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
}

export function seconds(ms) {
  return `${(ms / 1000).toFixed(1)}s`;
}
