// UI tests through the browser: code-server without the smoke-test driver (toasts, menus and
// quick picks behave as for a user), the extension installed from the repository.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const SESSION_TIMEOUT = 120000;

export async function runUiTests({ browser, url, workspace, resultsDir }) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  const results = [];
  const test = async (title, body) => {
    const started = Date.now();
    try {
      await body();
      results.push({ title, state: 'passed', durationMs: Date.now() - started });
    } catch (err) {
      await page.screenshot({ path: join(resultsDir, `failure-${results.length + 1}.png`) }).catch(() => {});
      results.push({ title, state: 'failed', durationMs: Date.now() - started, error: err.stack ?? String(err) });
    }
  };

  await test('the workbench opens the fixture workspace with the PruneLens activity-bar entry', async () => {
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.locator('.monaco-workbench').waitFor({ timeout: 60000 });
    await page.locator('.part.statusbar').waitFor({ timeout: 60000 });
    await activityBarItem(page, 'PruneLens').waitFor({ timeout: 60000 });
    await explorerRow(page, 'tiny.prune.json').waitFor({ timeout: 60000 });
  });

  await test('Prune Model… from the explorer runs a session the panel follows live', async () => {
    // Load the panel once so it follows the session from its first event.
    await activityBarItem(page, 'PruneLens').click();
    const panel = panelFrame(page);
    await panel.locator('body').waitFor({ timeout: 30000 });
    await activityBarItem(page, 'Explorer').click();

    await explorerRow(page, 'ui').click();
    const model = explorerRow(page, 'model.json');
    await model.waitFor({ timeout: 15000 });
    await model.click({ button: 'right' });
    await page.locator('.context-view .action-label', { hasText: 'Prune Model…' }).click();
    await pickQuickItem(page, 'Magnitude baseline');
    await pickQuickItem(page, 'FLOPs −50%');

    const chart = panel.locator('[data-testid="layer-chart"]');
    await chart.waitFor({ timeout: SESSION_TIMEOUT });
    const seen = [];
    let runningShot = false;
    const end = Date.now() + SESSION_TIMEOUT;
    while (Date.now() < end) {
      const bars = await chart.getAttribute('data-bars', { timeout: 5000 }).catch(() => null);
      if (bars && seen[seen.length - 1] !== bars) seen.push(bars);
      if (bars && !runningShot) {
        runningShot = true;
        await page.screenshot({ path: join(resultsDir, 'panel-running.png') });
      }
      if (await panel.locator('[data-testid="summary-card"]').isVisible().catch(() => false)) break;
      await page.waitForTimeout(50);
    }
    await panel.locator('[data-testid="summary-card"]').waitFor({ timeout: 5000 });
    const final = await chart.getAttribute('data-bars');
    if (seen[seen.length - 1] !== final) seen.push(final);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'panel-done.png') });
    if (seen.length < 2) throw new Error(`the layer bars never changed: ${JSON.stringify(seen)}`);
    const first = JSON.parse(seen[0]);
    const last = JSON.parse(final);
    if (!(sum(last) < sum(first))) throw new Error(`kept channels did not go down: ${seen.join(' → ')}`);

    const config = JSON.parse(readFileSync(join(workspace, 'ui', 'ui.prune.json'), 'utf8'));
    if (config.method !== 'l1' || config.target.flopsReduction !== 0.5) throw new Error(`unexpected config: ${JSON.stringify(config)}`);
    if (!existsSync(join(workspace, 'ui', 'pruned', 'pruning-report.json'))) throw new Error('no pruning-report.json in ui/pruned');
  });

  await test('a method code lens runs a variant of the config into its own folder', async () => {
    await activityBarItem(page, 'Explorer').click();
    await explorerRow(page, 'tiny.prune.json').click();
    const lens = (title) => page.locator('.codelens-decoration a', { hasText: title });
    await lens('▶ DSP').waitFor({ timeout: 30000 });
    // DSP when the engine has it; otherwise the engine says so and GoPrune runs instead.
    const attempts = [['▶ DSP', 'dsp'], ['▶ GoPrune', 'goprune'], ['▶ L1', 'l1']];
    const refused = [];
    for (const [title, method] of attempts) {
      await lens(title).click();
      const folder = join(workspace, 'out', `tiny-${method}`);
      const outcome = await waitForOutcome(page, folder, method);
      if (outcome === 'written') {
        await page.waitForTimeout(800);
        await page.screenshot({ path: join(resultsDir, `lens-${method}-done.png`) });
        return;
      }
      refused.push(`${method}: ${outcome}`);
      await lens('▶ Run').waitFor({ timeout: 30000 });
    }
    throw new Error(`no variant ran: ${refused.join('; ')}`);
  });

  await page.close();
  return results;
}

function activityBarItem(page, label) {
  return page.locator(`.activitybar .action-item a.action-label[aria-label^="${label}"]`).first();
}

function explorerRow(page, name) {
  return page.locator(`.part.sidebar .monaco-list-row[aria-label="${name}"]`).first();
}

function panelFrame(page) {
  return page.frameLocator('iframe.webview.ready >> nth=0').frameLocator('iframe#active-frame');
}

async function pickQuickItem(page, text) {
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ timeout: 20000 });
  await row.click();
}

/** 'written' when the variant's report appears; the engine's error text when it refuses the method. */
async function waitForOutcome(page, folder, method) {
  const end = Date.now() + SESSION_TIMEOUT;
  while (Date.now() < end) {
    if (existsSync(join(folder, 'pruning-report.json'))) return 'written';
    const error = page.locator('.notifications-toasts .notification-toast', { hasText: `method "${method}"` });
    if (await error.isVisible().catch(() => false)) {
      const text = (await error.innerText()).split('\n')[0];
      await error.locator('.codicon-notifications-clear, a[aria-label^="Clear"]').first().click().catch(() => {});
      return text;
    }
    await page.waitForTimeout(250);
  }
  return 'timed out';
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}
