// Shared pieces of the e2e runner: code-server processes, the Chromium browser, timing.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    pid: child.pid,
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

/**
 * Installs the packaged extension (`npm run package`'s .vsix) into `runDir`'s profile the way a user does,
 * with `code-server --install-extension`; returns the folder it was unpacked to.
 */
export function installVsix(runDir, vsix) {
  const extensionsDir = join(runDir, 'extensions');
  const args = ['--user-data-dir', join(runDir, 'user-data'), '--extensions-dir', extensionsDir, '--install-extension', vsix, '--force'];
  const r = spawnSync(join(E2E_ROOT, 'cs', 'bin', 'code-server'), args, { env: e2eEnv(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  const manifest = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
  const folder = join(extensionsDir, `${manifest.publisher}.${manifest.name}-${manifest.version}`);
  if (!existsSync(join(folder, 'package.json'))) throw new Error(`installing ${vsix} left no ${folder}`);
  return folder;
}

/** The processes below `pid` (by parent links in /proc). */
function descendants(pid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(Number(entry));
    } catch { /* the process ended */ }
  }
  const out = [];
  for (let queue = [pid]; queue.length;) for (const child of children.get(queue.shift()) ?? []) { out.push(child); queue.push(child); }
  return out;
}

/** The extension host's resident memory now and at its peak, in MB (Linux /proc), or undefined if none is found. */
export function extensionHostMemory(serverPid) {
  for (const pid of descendants(serverPid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=extensionHost')) continue;
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
      return { pid, rssMb: Math.round(kb('VmRSS') / 1024), peakRssMb: Math.round(kb('VmHWM') / 1024) };
    } catch { /* the process ended */ }
  }
  return undefined;
}

const ANALYSIS_LINE = /Analysis of (\S+): (\d+) layers in (\d+) ms/;

/**
 * From the run's logs: when the extension host activated PruneLens (and for which event) and when its activate()
 * finished ("PruneLens activated" in its own log), in ms; the first analysis of a model; and the first session's engine
 * start to model loaded.
 */
export function activationTimes(runDir) {
  const logs = join(runDir, 'user-data', 'logs');
  if (!existsSync(logs)) return undefined;
  const stamp = (line) => Date.parse(line.slice(0, 23).replace(' ', 'T'));
  for (const session of readdirSync(logs).sort().reverse()) {
    for (const host of readdirSync(join(logs, session)).filter((d) => d.startsWith('exthost'))) {
      const dir = join(logs, session, host);
      const hostLog = join(dir, 'remoteexthost.log'), ownLog = join(dir, 'prunelens.prunelens', 'PruneLens.log');
      if (!existsSync(hostLog) || !existsSync(ownLog)) continue;
      const activating = readFileSync(hostLog, 'utf8').split('\n').find((l) => l.includes('_doActivateExtension prunelens.prunelens'));
      const own = readFileSync(ownLog, 'utf8').split('\n');
      const activated = own.find((l) => l.includes('PruneLens activated'));
      if (!activating || !activated) continue;
      const started = own.find((l) => /Session \S+: .* engine pid/.test(l));
      const loaded = own.find((l) => /Session \S+: .*params, .*FLOPs, backend/.test(l));
      const analysisLine = own.find((l) => ANALYSIS_LINE.test(l));
      const analysis = analysisLine && ANALYSIS_LINE.exec(analysisLine);
      return {
        activationEvent: /activationEvent: '([^']*)'/.exec(activating)?.[1],
        activateMs: stamp(activated) - stamp(activating),
        // The first analysis of a model (engine start, model load, analysis), and when it ended after activation.
        firstAnalysis: analysis ? { model: analysis[1], layers: Number(analysis[2]), ms: Number(analysis[3]), endedAfterActivationMs: stamp(analysisLine) - stamp(activated) } : undefined,
        firstSessionModelLoadedMs: started && loaded ? stamp(loaded) - stamp(started) : undefined,
      };
    }
  }
  return undefined;
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
