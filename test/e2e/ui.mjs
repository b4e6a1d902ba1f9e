// UI tests through the browser: code-server without the smoke-test driver (toasts, menus and
// quick picks behave as for a user), the extension installed from the repository.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './harness.mjs';

const SESSION_TIMEOUT = 120000;
/** Sensitivity of the real MobileNetV2: about 27 groups × 3 ratios on a few samples at 224×224. */
const SENSITIVITY_SAMPLES = 8;
const SENSITIVITY_TIMEOUT = 420000;

/**
 * `grep`: run only the tests whose titles contain it (the first, which opens the workbench, always runs).
 * `measure(moment)`: called once the workbench is open ('opened') and after the last test, before the page (and with
 * it the extension host) closes ('end').
 */
export async function runUiTests({ browser, url, workspace, resultsDir, grep, measure = () => {} }) {
  const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
  const results = [];
  const test = async (title, body) => {
    if (grep && results.length > 0 && !title.includes(grep)) return;
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
  // Activated, with the configs' diagnostics analysed, before any session.
  await page.waitForTimeout(3000);
  measure('opened');

  await test('Prune Model… from the explorer runs a session the panel follows live', async () => {
    // Load the panel once so it follows the session from its first event.
    await activityBarItem(page, 'PruneLens').click();
    const panel = panelFrame(page);
    await panel.locator('body').waitFor({ timeout: 30000 });
    // Record every value the chart's data-bars takes, however briefly it is shown.
    const panelDocument = await panelDocumentFrame(page);
    await panelDocument.evaluate(() => {
      const seen = (window.__barsSeen = []);
      const record = () => {
        const bars = document.querySelector('[data-testid="layer-chart"]')?.getAttribute('data-bars');
        if (bars && bars !== '[]' && seen[seen.length - 1] !== bars) seen.push(bars);
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-bars'] });
      // And every layers event the panel receives: a hidden panel redraws on a throttled timer, so a fast session's
      // dense and pruned layers can land in one redraw; what arrived shows the panel was fed live all the same.
      const received = (window.__barsReceived = []);
      window.addEventListener('message', (e) => {
        const event = e.data?.type === 'engineEvent' ? e.data.event : undefined;
        if (event?.type !== 'layers') return;
        const bars = JSON.stringify(event.layers.map((l) => l.kept));
        if (received[received.length - 1] !== bars) received.push(bars);
      });
    });
    await activityBarItem(page, 'Explorer').click();

    await explorerRow(page, 'ui').click();
    const model = explorerRow(page, 'model.json');
    await model.waitFor({ timeout: 15000 });
    await model.click({ button: 'right' });
    await chooseMenuItem(page, 'Prune Model…');
    await pickQuickItem(page, 'Magnitude baseline');
    await pickQuickItem(page, 'FLOPs −50%');
    // The data step: MNIST fits this 28×28×1 model, so it comes first.
    const dataRows = await quickItems(page, 'Synthetic data');
    if (!/^MNIST \(built in\)/.test(dataRows[0])) throw new Error(`data step: ${JSON.stringify(dataRows)}`);
    await pickQuickItem(page, 'Handwritten digits');

    const chart = panel.locator('[data-testid="layer-chart"]');
    await chart.waitFor({ timeout: SESSION_TIMEOUT });
    await page.waitForTimeout(300);
    await page.screenshot({ path: join(resultsDir, 'panel-running.png') });
    const running = await chart.getAttribute('data-bars');
    if (await panel.locator('[data-testid="summary-card"]').isVisible()) throw new Error('the session ended before the panel showed it running');
    await panel.locator('[data-testid="summary-card"]').waitFor({ timeout: SESSION_TIMEOUT });
    const done = await chart.getAttribute('data-bars');
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'panel-done.png') });
    const drawn = await panelDocument.evaluate(() => window.__barsSeen);
    const received = await panelDocument.evaluate(() => window.__barsReceived);
    const seen = drawn.length >= 2 ? drawn : received;
    if (seen.length < 2) throw new Error(`the layer bars never changed: drawn ${JSON.stringify(drawn)}, received ${JSON.stringify(received)}`);
    if (done !== received[received.length - 1]) throw new Error(`the panel draws ${done}, the last layers it received were ${received[received.length - 1]}`);
    const first = JSON.parse(seen[0]);
    const last = JSON.parse(done);
    if (!(sum(last) < sum(first))) throw new Error(`kept channels did not go down: ${seen.join(' → ')}`);
    console.log(`  ui: layer bars ${seen.join(' → ')} (while running: ${running}, at the end: ${done})`);

    const config = JSON.parse(readFileSync(join(workspace, 'ui', 'ui.prune.json'), 'utf8'));
    if (config.method !== 'l1' || config.target.flopsReduction !== 0.5 || config.data.name !== 'mnist') throw new Error(`unexpected config: ${JSON.stringify(config)}`);
    if (!existsSync(join(workspace, 'ui', 'pruned', 'pruning-report.json'))) throw new Error('no pruning-report.json in ui/pruned');
  });

  await test('Prune Model… on a model no built-in data fits asks for data; synthetic data is labelled, one-shot writes none', async () => {
    const config = join(workspace, 'rgb', 'rgb.prune.json');
    const report = join(workspace, 'rgb', 'pruned', 'pruning-report.json');
    const panel = panelFrame(page);
    await runCommand(page, 'PruneLens: Prune Model…');
    await pickQuickItem(page, 'rgb/model.json');
    await pickQuickItem(page, 'Magnitude baseline');
    await pickQuickItem(page, 'FLOPs −50%');
    const rows = await quickItems(page, 'Synthetic data');
    if (!rows[0].startsWith('Pick a data folder…') || !rows.some((r) => r.startsWith('One-shot, no training')) || !rows.at(-1).startsWith('Synthetic data (pipeline check only; accuracy is meaningless)') || rows.some((r) => r.includes('MNIST'))) {
      throw new Error(`data step for a 12×12×3 model: ${JSON.stringify(rows)}`);
    }
    await pickQuickItem(page, 'Synthetic data (pipeline check only');
    const label = panel.locator('[data-testid="summary-card"] [data-testid="summary-synthetic"]');
    await label.waitFor({ timeout: SESSION_TIMEOUT });
    if (!(await label.innerText()).startsWith('Accuracy on synthetic data (meaningless)')) throw new Error(`summary note: ${await label.innerText()}`);
    const accuracy = (await panel.locator('[data-testid="summary-accuracy"]').innerText()).replace(/\s+/g, ' ');
    if (!accuracy.startsWith('top-1 (synthetic)')) throw new Error(`accuracy row: ${accuracy}`);
    const written = JSON.parse(readFileSync(config, 'utf8'));
    if (written.data?.format !== 'synthetic' || written.data.classes !== 4) throw new Error(`unexpected config: ${JSON.stringify(written)}`);
    if (JSON.parse(readFileSync(report, 'utf8')).syntheticData !== true) throw new Error('the report does not say its data was synthetic');
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'panel-synthetic.png') });

    // Again on the same model: update the config, this time pruning without data.
    await runCommand(page, 'PruneLens: Prune Model…');
    await pickQuickItem(page, 'rgb/model.json');
    await pickQuickItem(page, 'Magnitude baseline');
    await pickQuickItem(page, 'FLOPs −30%');
    await pickQuickItem(page, 'Update rgb.prune.json');
    const again = await quickItems(page, 'Synthetic data');
    if (!again[0].startsWith('Keep the data of rgb.prune.json')) throw new Error(`data step for an existing config: ${JSON.stringify(again)}`);
    await pickQuickItem(page, 'One-shot, no training');
    const end = Date.now() + SESSION_TIMEOUT;
    for (;;) {
      const r = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : undefined;
      if (r && r.target.flopsReduction === 0.3) {
        if (r.data !== undefined || r.syntheticData !== undefined || r.after.accuracy !== undefined) throw new Error(`one-shot report: ${JSON.stringify({ data: r.data, syntheticData: r.syntheticData, after: r.after })}`);
        break;
      }
      if (Date.now() > end) throw new Error('the one-shot session wrote no report');
      await page.waitForTimeout(250);
    }
    const oneShot = JSON.parse(readFileSync(config, 'utf8'));
    if ('data' in oneShot || oneShot.target.flopsReduction !== 0.3) throw new Error(`one-shot config: ${JSON.stringify(oneShot)}`);
    await panel.locator('[data-testid="summary-synthetic"]').waitFor({ state: 'detached', timeout: 30000 });
    if (await panel.locator('[data-testid="summary-accuracy"]').count()) throw new Error('a run without data shows an accuracy');
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
      await runCommand(page, 'Notifications: Clear All Notifications');
      await lens(title).click();
      const folder = join(workspace, 'out', `tiny-${method}`);
      const outcome = await waitForOutcome(page, folder);
      await lens('▶ Run').waitFor({ timeout: 30000 });
      if (outcome === 'written') {
        await page.waitForTimeout(800);
        await page.screenshot({ path: join(resultsDir, `lens-${method}-done.png`) });
        if (refused.length) console.log(`  ui: variant lens fell back to ${method} after: ${refused.join('; ')}`);
        return;
      }
      refused.push(`${method}: ${outcome}`);
    }
    throw new Error(`no variant ran: ${refused.join('; ')}`);
  });

  await test('Analyze Model on a .keras file from the explorer shows its groups in the panel', async () => {
    // The command, not the activity bar: clicking the entry of the shown view would hide the sidebar.
    await runCommand(page, 'View: Show Explorer');
    const model = await revealInFolder(page, 'keras', 'tiny_cnn.keras');
    await model.click({ button: 'right' });
    await chooseMenuItem(page, 'Analyze Model');
    const card = panelFrame(page).locator('[data-testid="analysis-card"]');
    await card.locator('[data-testid="prunability"]').waitFor({ timeout: 60000 });
    const metric = async (id) => (await card.locator(`[data-metric="${id}"] .metric-after`).innerText()).trim();
    const groups = await metric('groups');
    const channels = await metric('channels');
    const prunability = (await card.locator('[data-testid="prunability"]').innerText()).trim();
    // Keras' tiny_cnn: conv2d (8) and conv2d_1 (12) are the two groups; the softmax head is blocked.
    if (groups !== '2' || channels !== '20') throw new Error(`analysis of tiny_cnn.keras: ${groups} groups, ${channels} channels (${prunability})`);
    console.log(`  ui: tiny_cnn.keras: ${groups} groups, ${channels} channels, ${prunability}`);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'analyze-keras.png') });
  });

  await test('Analyze Model on an .onnx file from the explorer shows its channel groups in the panel', async () => {
    const modelPath = join(workspace, 'onnx', 'resnet_tiny.onnx');
    // What the engine finds in the same file, through the CLI built from the same sources.
    const cli = spawnSync(process.execPath, [join(REPO, 'dist', 'cli.js'), 'analyze', modelPath, '--json'], { encoding: 'utf8' });
    if (cli.status !== 0) throw new Error(`prunelens analyze resnet_tiny.onnx: exit ${cli.status}: ${cli.stderr.split('\n')[0]}`);
    const expected = JSON.parse(cli.stdout);
    const expectedChannels = expected.groups.reduce((n, g) => n + g.channels, 0);
    if (expected.groups.length === 0) throw new Error('the engine finds no prunable group in resnet_tiny.onnx');
    await runCommand(page, 'View: Show Explorer');
    const model = await revealInFolder(page, 'onnx', 'resnet_tiny.onnx');
    await model.click({ button: 'right' });
    await chooseMenuItem(page, 'Analyze Model');
    const card = panelFrame(page).locator('[data-testid="analysis-card"]');
    await card.locator('[data-testid="prunability"]').waitFor({ timeout: 60000 });
    // The card follows the latest analysis: wait until it is this model's.
    await card.locator('.card-title', { hasText: expected.modelName }).waitFor({ timeout: 60000 });
    const metric = async (id) => (await card.locator(`[data-metric="${id}"] .metric-after`).innerText()).trim();
    const groups = await metric('groups');
    const channels = await metric('channels');
    const prunability = (await card.locator('[data-testid="prunability"]').innerText()).trim();
    if (groups !== String(expected.groups.length) || channels !== String(expectedChannels)) {
      throw new Error(`analysis of resnet_tiny.onnx in the panel: ${groups} groups, ${channels} channels (${prunability}); the CLI: ${expected.groups.length} groups, ${expectedChannels} channels`);
    }
    // Every layer with weights in the panel's list, with the status the engine gives it (prunable and coupled ones carry a group).
    const list = panelFrame(page).locator('[data-testid="layer-list"] li[data-layer]');
    await list.first().waitFor({ timeout: 30000 });
    const shown = await list.evaluateAll((items) => items.map((li) => `${li.getAttribute('data-layer')}:${li.getAttribute('data-status')}`));
    const engine = expected.layers.filter((l) => l.params > 0).map((l) => `${l.name}:${l.status}`);
    if (JSON.stringify(shown) !== JSON.stringify(engine)) throw new Error(`layer list of resnet_tiny.onnx: ${JSON.stringify(shown)}; the CLI: ${JSON.stringify(engine)}`);
    console.log(`  ui: resnet_tiny.onnx: ${groups} groups, ${channels} channels, ${prunability}`);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'analyze-onnx.png') });
  });

  await test('Prune Model… on a .keras file from the explorer writes a pruned .keras beside its report', async () => {
    const folder = join(workspace, 'keras');
    const report = join(folder, 'pruned', 'pruning-report.json');
    const pruned = join(folder, 'pruned', 'tiny_cnn.keras');
    await runCommand(page, 'View: Show Explorer');
    const model = await revealInFolder(page, 'keras', 'tiny_cnn.keras');
    await model.click({ button: 'right' });
    await chooseMenuItem(page, 'Prune Model…');
    await pickQuickItem(page, 'Magnitude baseline');
    await pickQuickItem(page, 'FLOPs −30%');
    // The data step read the Keras file's 16×16×3 input: no MNIST.
    const rows = await quickItems(page, 'Synthetic data');
    if (rows.some((r) => r.includes('MNIST')) || !rows.some((r) => r.startsWith('One-shot, no training'))) throw new Error(`data step for tiny_cnn.keras: ${JSON.stringify(rows)}`);
    await pickQuickItem(page, 'One-shot, no training');
    const end = Date.now() + SESSION_TIMEOUT;
    while (!existsSync(report)) {
      if (Date.now() > end) throw new Error('the session on tiny_cnn.keras wrote no report');
      await page.waitForTimeout(250);
    }
    if (!existsSync(pruned)) throw new Error(`no pruned .keras: keras/pruned holds ${JSON.stringify(readdirSync(join(folder, 'pruned')))}`);
    const config = JSON.parse(readFileSync(join(folder, 'tiny_cnn.prune.json'), 'utf8'));
    if (config.model !== './tiny_cnn.keras' || config.output !== 'pruned') throw new Error(`unexpected config: ${JSON.stringify(config)}`);
    const r = JSON.parse(readFileSync(report, 'utf8'));
    if (!(r.after.params < r.before.params)) throw new Error(`params ${r.before.params} → ${r.after.params}`);
    console.log(`  ui: tiny_cnn.keras pruned: params ${r.before.params} → ${r.after.params}, ${statSync(join(folder, 'tiny_cnn.keras')).size} → ${statSync(pruned).size} bytes`);
    await revealInFolder(page, 'pruned', 'tiny_cnn.keras').catch(() => {});
    await panelFrame(page).locator('[data-testid="summary-card"]').waitFor({ timeout: 30000 });
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'prune-keras.png') });
  });

  await test('Analyze Sensitivity on the real MobileNetV2 streams one curve per channel group and a sortable table into the panel', async () => {
    const config = join(workspace, 'mobilenet.prune.json');
    const reportFile = join(workspace, 'mobilenet.sensitivity.json');
    if (!existsSync(config)) throw new Error('no mobilenet.prune.json in the workspace: is the nsfwjs devDependency installed?');
    await runCommand(page, 'View: Show Explorer');
    await explorerRow(page, 'mobilenet.prune.json').click();
    // The lens beside the method lenses; it asks how thorough, and a custom few ratios and samples keep it short.
    const lens = page.locator('.codelens-decoration a', { hasText: 'Sensitivity' }).first();
    await lens.waitFor({ timeout: 30000 });
    await lens.click();
    await pickQuickItem(page, 'Custom…');
    const input = page.locator('.quick-input-widget input');
    await input.waitFor({ state: 'visible', timeout: 10000 });
    await input.fill('0.25,0.5,0.75');
    await page.keyboard.press('Enter');
    await page.waitForTimeout(300);
    await input.fill(String(SENSITIVITY_SAMPLES));
    await page.keyboard.press('Enter');
    const started = Date.now();

    const panel = panelFrame(page);
    const chart = panel.locator('[data-testid="sensitivity-chart"]');
    await chart.waitFor({ state: 'visible', timeout: SENSITIVITY_TIMEOUT });
    const pointsWhileRunning = Number(await chart.getAttribute('data-points'));
    const statusWhileRunning = (await panel.locator('[data-testid="run-status"]').innerText()).trim();
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'mobilenet.sensitivity.json' }).first();
    await toast.waitFor({ timeout: SENSITIVITY_TIMEOUT });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    await panel.locator('[data-testid="run-status"]', { hasText: 'done' }).waitFor({ timeout: 30000 });

    const report = JSON.parse(readFileSync(reportFile, 'utf8'));
    const groups = report.groups.length;
    if (groups < 20) throw new Error(`MobileNetV2 has ${groups} channel groups in the report`);
    if (report.groups.some((g) => g.points.length !== 3)) throw new Error('a group was not measured at the three ratios');
    // The points streamed in: the chart showed some while the analysis ran, all of them at the end.
    if (!(pointsWhileRunning >= 1 && pointsWhileRunning < groups * 3) || statusWhileRunning !== 'running') {
      throw new Error(`the panel showed ${pointsWhileRunning} of ${groups * 3} points while it said "${statusWhileRunning}"`);
    }
    const curves = Number(await chart.getAttribute('data-curves'));
    const points = Number(await chart.getAttribute('data-points'));
    if (curves !== groups || points !== groups * 3) throw new Error(`the chart draws ${curves} curves of ${points} points; the report has ${groups} groups`);
    const rows = panel.locator('[data-testid="sensitivity-table"] tbody tr');
    if ((await rows.count()) !== groups) throw new Error(`the table has ${await rows.count()} rows for ${groups} groups`);
    // Every row with its FLOPs and measured latency share (MobileNetV2 has fewer than 300 layers), most sensitive first.
    const cells = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    if (cells.some((c) => c.length !== 6 || !/%$/.test(c[3]) || !/%$/.test(c[4]))) throw new Error(`table rows: ${JSON.stringify(cells.slice(0, 3))}`);
    const scores = await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.querySelector('[data-column="score"]').getAttribute('data-score'))));
    if (scores.some((s, i) => i > 0 && s > scores[i - 1])) throw new Error(`not sorted by sensitivity: ${scores.join(', ')}`);
    // A header click sorts by that column.
    await panel.locator('[data-testid="sensitivity-table"] th[data-sort="flops"]').click();
    await panel.locator('[data-testid="sensitivity-table"] th[data-sort="flops"][aria-sort="descending"]').waitFor({ timeout: 10000 });
    await panel.locator('[data-testid="sensitivity-table"] th[data-sort="score"]').click();
    await panel.locator('[data-testid="sensitivity-table"] th[data-sort="score"][aria-sort="descending"]').waitFor({ timeout: 10000 });
    console.log(`  ui: MobileNetV2 sensitivity: ${groups} groups × 3 ratios on ${report.samples} samples in ${seconds} s (${pointsWhileRunning} points in the panel while it said "${statusWhileRunning}"); most sensitive: ${cells[0][1]} (${cells[0][5]})`);

    // A wider side bar for the screenshot, one faint group's row hovered so its curve stands out.
    const sidebar = await page.locator('.part.sidebar').boundingBox();
    if (sidebar) {
      await page.mouse.move(sidebar.x + sidebar.width + 1, sidebar.y + 300);
      await page.mouse.down();
      await page.mouse.move(sidebar.x + 600, sidebar.y + 300, { steps: 8 });
      await page.mouse.up();
    }
    await rows.nth(8).hover();
    await panel.locator('[data-testid="sensitivity-chart"]:not([data-highlighted=""])').waitFor({ timeout: 10000 }).catch(() => {});
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'sensitivity-panel.png') });
  });

  await test('issue 19 on the real MobileNetV2: analyse, GoPrune with live sparsity, the report in the editor area, two runs in the table, the output revealed', async () => {
    const config = join(workspace, 'mobilenet-goprune.prune.json');
    if (!existsSync(config)) throw new Error('no mobilenet-goprune.prune.json in the workspace: is the nsfwjs devDependency installed?');
    await runCommand(page, 'Notifications: Clear All Notifications');
    // Analyse: 50+ layers, their groups in the sidebar.
    await runCommand(page, 'View: Show Explorer');
    const modelRow = await revealInFolder(page, 'mobilenet', 'model.json');
    // The explorer can re-render between locating a row and clicking it (files written by earlier tests appear):
    // a menu without Analyze Model came from another row, so close it and click again.
    for (let attempt = 1; ; attempt++) {
      await modelRow.click({ button: 'right' });
      const ready = await page.locator('.context-view .monaco-menu .action-item', { hasText: 'Analyze Model' }).first().waitFor({ timeout: 5000 }).then(() => true, () => false);
      if (ready) break;
      await page.keyboard.press('Escape');
      if (attempt === 3) throw new Error('the context menu of mobilenet/model.json never offered Analyze Model');
      await page.waitForTimeout(500);
    }
    await chooseMenuItem(page, 'Analyze Model');
    const sidebar = await frameWithPlacement(page, 'sidebar');
    const card = sidebar.locator('[data-testid="analysis-card"]');
    // nsfwjs' MobileNetV2 is named model_1. A re-render under the click can give another model.json's menu (tiny/model.json
    // has Analyze Model too): then the command, with the model picked by its path.
    const mobilenetCard = card.locator('.card-title', { hasText: 'model_1' });
    if (!(await mobilenetCard.waitFor({ timeout: 45000 }).then(() => true, () => false))) {
      console.log(`  ui: the explorer's menu analysed ${(await card.locator('.card-title').innerText().catch(() => '?')).trim()}; Analyze Model from the command palette instead`);
      await runCommand(page, 'PruneLens: Analyze Model');
      await page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: /^\s*mobilenet\/model\.json/ }).first().click({ timeout: 20000 });
    }
    await mobilenetCard.waitFor({ timeout: 120000 });
    const groups = Number((await card.locator('[data-metric="groups"] .metric-after').innerText()).trim());
    const layerCount = (await sidebar.locator('[data-testid="layer-count"]').innerText().catch(() => '')).trim();
    if (!(groups >= 20)) throw new Error(`MobileNetV2 analysed with ${groups} groups`);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-analyze-sidebar-dark.png') });

    // Every sparsity the layer view shows during the method phase, with when it showed it.
    await sidebar.evaluate(() => {
      const seen = (window.__sparsitySeen = []);
      const record = () => {
        const chart = document.querySelector('[data-testid="layer-chart"]');
        const values = chart?.getAttribute('data-sparsity');
        const step = chart?.getAttribute('data-sparsity-step') ?? '';
        const last = seen[seen.length - 1];
        // The result card is always in the DOM, hidden until the run is done: only a shown one counts.
        const summary = !!document.querySelector('[data-testid="summary-card"]:not([hidden])');
        if (values && (!last || last.values !== values || last.step !== step)) seen.push({ at: Date.now(), step, values, summary });
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-sparsity', 'data-sparsity-step'] });
    });

    // GoPrune (the config's method) with the ▶ Run lens; its progress in the status bar while it runs.
    await runCommand(page, 'View: Show Explorer');
    await explorerRow(page, 'mobilenet-goprune.prune.json').click();
    const lens = (title) => page.locator('.codelens-decoration a', { hasText: title }).first();
    await lens('▶ Run').waitFor({ timeout: 60000 });
    await lens('▶ Run').click();
    const status = page.locator('.part.statusbar .statusbar-item', { hasText: /PruneLens GoPrune/ }).first();
    await status.waitFor({ timeout: 120000 });
    // The command, not the activity bar: the session has revealed the panel, and clicking its entry would hide the sidebar.
    await runCommand(page, 'PruneLens: Show Session Panel');
    const summary = sidebar.locator('[data-testid="summary-card"]');
    // One progress: the status bar's percent and ETA are the panel header's (data-testid="eta"), from the engine's
    // session-wide progress events. Read side by side (the webview gets each event a moment after the host), until
    // they agree within one point at a percent above `above`.
    const progressAgreed = async (above, timeout) => {
      const until = Date.now() + timeout;
      let last = '';
      while (Date.now() < until) {
        const statusText = (await status.innerText({ timeout: 2000 }).catch(() => '')).replace(/\s+/g, ' ').trim();
        const headerText = (await sidebar.locator('[data-testid="eta"]').innerText({ timeout: 2000 }).catch(() => '')).trim();
        const statusMatch = /GoPrune (\d+)%(?: · ETA (.+))?$/.exec(statusText);
        const headerMatch = /^(\d+)%(?: · (.+) left)?$/.exec(headerText);
        last = `status bar "${statusText}", panel "${headerText}"`;
        if (statusMatch && headerMatch) {
          const at = { status: Number(statusMatch[1]), panel: Number(headerMatch[1]), statusEta: statusMatch[2] ?? '', panelEta: headerMatch[2] ?? '', statusText, headerText };
          if (at.status > above && Math.abs(at.status - at.panel) <= 1 && at.statusEta === at.panelEta) return at;
        }
        if (await summary.isVisible().catch(() => false)) break;
        await page.waitForTimeout(200);
      }
      throw new Error(`the status bar and the panel never agreed on a percent above ${above}%: last ${last}`);
    };
    const firstProgress = await progressAgreed(0, SESSION_TIMEOUT * 3);
    // A screenshot mid-run, once the method's sparsity shows.
    await sidebar.locator('[data-testid="layer-chart"][data-sparsity-step^="train:"]').waitFor({ timeout: SESSION_TIMEOUT * 3 }).catch(() => {});
    await page.waitForTimeout(500);
    await page.screenshot({ path: join(resultsDir, 'issue19-goprune-running-sidebar-dark.png') });
    const laterProgress = await progressAgreed(firstProgress.status, SESSION_TIMEOUT * 3);
    const statusWhileRunning = `${firstProgress.statusText}" = panel "${firstProgress.headerText}", then "${laterProgress.statusText}" = panel "${laterProgress.headerText}`;
    await summary.waitFor({ timeout: SESSION_TIMEOUT * 5 });
    const seen = await sidebar.evaluate(() => window.__sparsitySeen);
    const during = seen.filter((s) => s.step.startsWith('train:') && !s.summary).map((s) => ({ ...s, values: JSON.parse(s.values) }));
    const nonzero = during.filter((s) => s.values.some((v) => v > 0));
    const distinct = new Set(nonzero.map((s) => JSON.stringify(s.values)));
    if (nonzero.length < 2 || distinct.size < 2) throw new Error(`the layer view's sparsity during GoPrune's training: ${JSON.stringify(during.map((s) => [s.step, Math.max(...s.values)]))} (of ${seen.length} states seen: ${JSON.stringify(seen.slice(-8).map((s) => [s.step, s.summary]))})`);
    const first = nonzero[0];
    const last = nonzero[nonzero.length - 1];
    const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;
    console.log(`  ui: MobileNetV2 GoPrune: ${groups} groups${layerCount ? ` (${layerCount})` : ''}; sparsity at ${first.step} mean ${mean(first.values).toFixed(3)} → at ${last.step} mean ${mean(last.values).toFixed(3)}, ${distinct.size} distinct states in ${((last.at - first.at) / 1000).toFixed(1)} s; status bar "${statusWhileRunning}"`);
    // The output link in the result card reveals the pruned model in the explorer; the done message names it too.
    const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'Saved to out/mobilenet-goprune/model.json' }).first();
    const toastShown = await toast.waitFor({ timeout: 20000 }).then(() => true, () => false);
    await page.screenshot({ path: join(resultsDir, 'issue19-goprune-done-sidebar-dark.png') });
    const outputLink = sidebar.locator('[data-testid="summary-card"] [data-testid="output-link"]');
    if (await outputLink.count()) {
      await outputLink.click();
    } else if (toastShown) {
      console.log('  ui: no output link in the result card; Reveal in Explorer from the done message');
      await toast.locator('.monaco-button', { hasText: 'Reveal in Explorer' }).click();
    } else {
      console.log('  ui: the done message was gone; revealing through the command');
      await page.screenshot({ path: join(resultsDir, 'issue19-goprune-done-sidebar-dark.png') });
      await runCommand(page, 'PruneLens: Reveal Pruned Model in Explorer');
      await pickQuickItem(page, 'GoPrune · mobilenet-goprune.prune.json');
    }
    // The progress is cleared at the end.
    await page.locator('.part.statusbar .statusbar-item', { hasText: /PruneLens GoPrune/ }).waitFor({ state: 'detached', timeout: 15000 });
    await page.locator('.part.sidebar .monaco-list-row.selected[aria-label="model.json"]').waitFor({ timeout: 15000 });
    const parent = await page.locator('.part.sidebar .monaco-list-row[aria-label$="mobilenet-goprune"]').first().getAttribute('aria-expanded');
    if (parent !== 'true') throw new Error('the revealed model.json is not the one in out/mobilenet-goprune');

    // The report, rendered in the editor area.
    await runCommand(page, 'PruneLens: Open Pruning Report');
    await pickQuickItem(page, 'GoPrune · mobilenet-goprune.prune.json');
    const editor = await frameWithPlacement(page, 'editor');
    await editor.locator('[data-testid="summary-card"]').waitFor({ timeout: 30000 });
    await page.locator('.tabs-container .tab.active', { hasText: 'pruning-report.json' }).waitFor({ timeout: 10000 });
    const width = await page.evaluate(() => document.querySelector('.part.editor')?.getBoundingClientRect().width ?? 0);
    if (!(width > 600)) throw new Error(`the report is in an editor ${width} px wide`);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-report-editor-dark.png') });

    // The layer view's latency column: each layer timed alone at the session's end, in the report too.
    const latencies = (await editor.locator('[data-testid="layer-list"] li .layer-latency').allTextContents()).map((t) => t.trim());
    const measured = latencies.filter((t) => /\d ms$/.test(t));
    if (measured.length < 20) throw new Error(`the report's layer view shows ${measured.length} measured latencies of ${latencies.length}: ${JSON.stringify(latencies.slice(0, 8))}`);
    const latencyTitle = await editor.locator('[data-testid="layer-list"] li .layer-latency', { hasText: ' ms' }).first().getAttribute('title');
    if (!/ms dense \u2192 .* ms pruned .*the layer alone on /.test(latencyTitle ?? '')) throw new Error(`latency cell title: ${latencyTitle}`);
    await editor.locator('[data-testid="layer-chart"] [data-sort="latency"]').click();
    await editor.locator('[data-testid="layer-chart"] .layer-head-latency[aria-sort="descending"]').waitFor({ timeout: 10000 });
    const slowest = editor.locator('[data-testid="layer-list"] li').first();
    console.log(`  ui: report layer view: ${measured.length} of ${latencies.length} layers timed; slowest ${await slowest.getAttribute('data-layer')} (${await slowest.locator('.layer-latency').getAttribute('title')})`);

    // Compare with original: the layer-by-layer table in an editor tab of its own, sortable.
    await editor.locator('[data-testid="compare-with-original"]').click();
    await page.locator('.tabs-container .tab.active', { hasText: 'mobilenet-goprune against the original' }).waitFor({ timeout: 30000 });
    const comparison = await frameWithPlacement(page, 'editor', 'body[data-view="comparison"] [data-testid="layer-comparison"] tbody tr');
    const comparisonRows = comparison.locator('[data-testid="layer-comparison"] tbody tr');
    const layerRows = await comparisonRows.count();
    const timedRows = await comparison.locator('[data-testid="layer-comparison"] td[data-column="latency"]').evaluateAll((tds) => tds.filter((td) => / ms/.test(td.textContent)).length);
    if (layerRows < 50 || timedRows < 20) throw new Error(`the comparison lists ${layerRows} layers, ${timedRows} with a latency`);
    await comparison.locator('[data-testid="layer-comparison"] [data-sort="flops"]').click();
    await comparison.locator('[data-testid="layer-comparison"] th[data-column="flops"][aria-sort="descending"]').waitFor({ timeout: 10000 });
    const flops = await comparisonRows.evaluateAll((trs) => trs.map((tr) => Number(tr.querySelector('td[data-column="flops"]').dataset.after)));
    if (flops.some((f, i) => i > 0 && f > flops[i - 1])) throw new Error(`the comparison sorted by FLOPs: ${flops.slice(0, 8).join(', ')}…`);
    console.log(`  ui: compare with original: ${layerRows} layers, ${timedRows} timed; most FLOPs after pruning: ${await comparisonRows.first().getAttribute('data-layer')}`);
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-compare-editor-dark.png') });

    // A second run of the same config (the L1 lens, into out/mobilenet-goprune-l1): the runs table lists both.
    await runCommand(page, 'View: Show Explorer');
    await explorerRow(page, 'mobilenet-goprune.prune.json').click();
    await lens('▶ L1').waitFor({ timeout: 30000 });
    await lens('▶ L1').click();
    const variantReport = join(workspace, 'out', 'mobilenet-goprune-l1', 'pruning-report.json');
    const end = Date.now() + SESSION_TIMEOUT * 4;
    while (!existsSync(variantReport)) {
      if (Date.now() > end) throw new Error('the L1 variant wrote no report');
      await page.waitForTimeout(500);
    }
    // Only the session panel in the editor area (the report editor lists its one run).
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'PruneLens: Open Session in Editor');
    const session = await frameWithPlacement(page, 'editor', '[data-testid="runs-table"]');
    // A fresh session editor replays the last analysis, which takes its focus: the runs are the run's view.
    const showRun = session.locator('[data-testid="focus-button"]', { hasText: 'Show run' });
    if (await showRun.isVisible()) await showRun.click();
    const rows = session.locator('[data-testid="runs-table"] tbody tr');
    await rows.nth(1).waitFor({ timeout: 60000 });
    // Cell by cell: a row's textContent runs its cells together ("l1flopsReduction 30%…").
    const texts = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.children].map((cell) => cell.textContent.replace(/\s+/g, ' ').trim()).join(' | ')));
    if (texts.length < 2 || !texts.some((t) => /goprune/i.test(t)) || !texts.some((t) => /\bl1\b/i.test(t))) throw new Error(`runs table: ${JSON.stringify(texts)}`);
    console.log(`  ui: runs table: ${texts.length} rows: ${texts.map((t) => t.slice(0, 60)).join(' | ')}`);
    // The table in sight, no done message over it.
    await runCommand(page, 'Notifications: Clear All Notifications');
    await session.locator('[data-testid="runs-table"]').scrollIntoViewIfNeeded();
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-runs-editor-dark.png') });

    // The same views in Light Modern, the webviews asserted light.
    await lightThemeScreenshots(page, workspace, resultsDir);
  });

  await test('issue 19: Compare with original comes back after a window reload, its table read again from the report', async () => {
    const title = 'mobilenet-goprune against the original';
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'PruneLens: Open Pruning Report');
    await pickQuickItem(page, 'GoPrune · mobilenet-goprune.prune.json');
    const report = await frameWithPlacement(page, 'editor', '[data-testid="summary-card"]:not([hidden])');
    await report.locator('[data-testid="compare-with-original"]').click();
    await page.locator('.tabs-container .tab.active', { hasText: title }).waitFor({ timeout: 30000 });
    const comparisonSelector = 'body[data-view="comparison"] [data-testid="layer-comparison"] tbody tr[data-layer]';
    const before = await frameWithPlacement(page, 'editor', comparisonSelector);
    const rowsBefore = await before.locator(comparisonSelector).count();
    // Marks the webview and the workbench of before the reload: only a new one counts after it.
    await before.evaluate(() => { document.body.dataset.beforeReload = 'true'; });
    await page.evaluate(() => { window.__beforeReload = true; });
    // The webview saves its state with each redraw; give the last one a moment before the reload.
    await page.waitForTimeout(1000);
    await runCommand(page, 'Developer: Reload Window');
    await page.waitForFunction(() => !window.__beforeReload && !!document.querySelector('.part.statusbar'), undefined, { timeout: 60000 });
    await page.locator('.tabs-container .tab.active', { hasText: title }).waitFor({ timeout: 60000 });
    // The serializer rebuilt the tab from the report file its state named: the same table, read from the report again.
    const after = await frameWithPlacement(page, 'editor', comparisonSelector.replace('body[data-view="comparison"]', 'body[data-view="comparison"]:not([data-before-reload])'));
    const rowsAfter = await after.locator(comparisonSelector).count();
    const note = (await after.locator('[data-testid="layer-comparison-note"]').innerText()).trim();
    if (rowsAfter !== rowsBefore || !/^55 layers with output channels/.test(note)) throw new Error(`after the reload the comparison shows ${rowsAfter} rows (${rowsBefore} before): "${note}"`);
    console.log(`  ui: after a window reload the comparison tab is back with ${rowsAfter} rows: "${note}"`);
    await page.screenshot({ path: join(resultsDir, 'issue19-compare-after-reload-dark.png') });
  });

  measure('end');
  await page.close();
  return results;
}

/**
 * Switches VS Code to Light Modern through the workspace's settings (the color theme picker if the setting does not
 * take), screenshots the sidebar, the runs and the report and comparison editors, each webview asserted light
 * (VS Code's `vscode-light` body class), then switches back.
 */
async function lightThemeScreenshots(page, workspace, resultsDir) {
  await setWorkspaceColorTheme(page, workspace, 'Default Light Modern', 'vs');
  try {
    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'Notifications: Clear All Notifications');
    await runCommand(page, 'PruneLens: Show Session Panel');
    await webviewWithTheme(page, 'sidebar', 'vscode-light');
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-sidebar-light.png') });

    await runCommand(page, 'PruneLens: Open Session in Editor');
    const session = await webviewWithTheme(page, 'editor', 'vscode-light', '[data-testid="runs-table"]');
    const showRun = session.locator('[data-testid="focus-button"]', { hasText: 'Show run' });
    if (await showRun.isVisible()) await showRun.click();
    await session.locator('[data-testid="runs-table"]').scrollIntoViewIfNeeded();
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-runs-editor-light.png') });

    await runCommand(page, 'View: Close All Editors');
    await runCommand(page, 'PruneLens: Open Pruning Report');
    await pickQuickItem(page, 'GoPrune · mobilenet-goprune.prune.json');
    const report = await webviewWithTheme(page, 'editor', 'vscode-light', '[data-testid="summary-card"]:not([hidden])');
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-report-editor-light.png') });

    await report.locator('[data-testid="compare-with-original"]').click();
    await webviewWithTheme(page, 'editor', 'vscode-light', 'body[data-view="comparison"] [data-testid="layer-comparison"] tbody tr');
    await page.waitForTimeout(800);
    await page.screenshot({ path: join(resultsDir, 'issue19-compare-editor-light.png') });
  } finally {
    await setWorkspaceColorTheme(page, workspace, undefined, 'vs-dark').catch((err) => console.log(`  ui: back to the dark theme: ${err.message}`));
  }
}

/**
 * Sets (or, with no theme, removes) `workbench.colorTheme` in the workspace's settings and waits until the workbench
 * carries `workbenchClass` (vs: light, vs-dark: dark); falls back to the color theme picker.
 */
async function setWorkspaceColorTheme(page, workspace, theme, workbenchClass) {
  const folder = join(workspace, '.vscode');
  const file = join(folder, 'settings.json');
  const settings = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  if (theme) settings['workbench.colorTheme'] = theme;
  else delete settings['workbench.colorTheme'];
  mkdirSync(folder, { recursive: true });
  writeFileSync(file, `${JSON.stringify(settings, null, 2)}\n`);
  const workbench = page.locator(`.monaco-workbench.${workbenchClass}`);
  if (await workbench.waitFor({ timeout: 15000 }).then(() => true, () => false)) return;
  console.log(`  ui: the workspace setting did not switch the theme; the color theme picker instead`);
  await runCommand(page, 'Preferences: Color Theme');
  await pickQuickItem(page, workbenchClass === 'vs' ? 'Light Modern' : 'Dark Modern');
  await workbench.waitFor({ timeout: 15000 });
}

/** The PruneLens webview in `placement` (holding `selector`, if given) once its body carries the theme class VS Code gives it. */
async function webviewWithTheme(page, placement, themeClass, selector) {
  const end = Date.now() + 30000;
  for (;;) {
    for (const frame of page.frames()) {
      const found = await frame.evaluate(([p, c, s]) => document.body?.dataset.placement === p && document.body.classList.contains(c) && (!s || !!document.querySelector(s)), [placement, themeClass, selector]).catch(() => false);
      if (found) return frame;
    }
    if (Date.now() > end) {
      const seen = await Promise.all(page.frames().map((f) => f.evaluate(() => document.body?.dataset.placement ? `${document.body.dataset.placement}: ${document.body.className}` : '').catch(() => '')));
      throw new Error(`no PruneLens ${placement} webview with body class ${themeClass}${selector ? ` holding ${selector}` : ''}; webviews: ${JSON.stringify(seen.filter(Boolean))}`);
    }
    await page.waitForTimeout(250);
  }
}

/** The document of the PruneLens webview shown in `placement` (sidebar or editor), optionally the one holding `selector`. */
async function frameWithPlacement(page, placement, selector) {
  const end = Date.now() + 60000;
  for (;;) {
    for (const frame of page.frames()) {
      const found = await frame.evaluate(([p, s]) => document.body?.dataset.placement === p && (!s || !!document.querySelector(s)), [placement, selector]).catch(() => false);
      if (found) return frame;
    }
    if (Date.now() > end) throw new Error(`no PruneLens webview in the ${placement}${selector ? ` with ${selector}` : ''}`);
    await page.waitForTimeout(250);
  }
}

/** The explorer row of `name` inside the top-level `folder`, expanding the folder until the row shows. */
async function revealInFolder(page, folder, name) {
  const folderRow = explorerRow(page, folder);
  const row = explorerRow(page, name);
  await folderRow.waitFor({ timeout: 15000 });
  for (let attempt = 0; attempt < 6 && !(await row.isVisible()); attempt++) {
    // The explorer can re-render or lose the sidebar under a click (a CI run waited 30 s on a folder row that never
    // became visible): a short click, and on a miss the explorer shown again before the next try.
    if ((await folderRow.getAttribute('aria-expanded')) !== 'true') {
      await folderRow.click({ timeout: 3000 }).catch(() => runCommand(page, 'View: Show Explorer'));
    }
    await row.waitFor({ timeout: 2000 }).catch(() => {});
  }
  await row.waitFor({ timeout: 5000 });
  return row;
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

/** Context-menu items act on mouse-up after a hover; choosing by keyboard is what works reliably. */
async function chooseMenuItem(page, label) {
  const item = page.locator('.context-view .monaco-menu .action-item', { hasText: label }).first();
  await item.waitFor({ timeout: 10000 });
  await item.hover();
  await page.keyboard.press('Enter');
  await page.locator('.context-view .monaco-menu').waitFor({ state: 'detached', timeout: 10000 }).catch(() => {});
}

/** The panel's own document (inside the webview host iframe), for evaluating scripts in it. */
async function panelDocumentFrame(page) {
  const host = await (await page.locator('iframe.webview.ready').first().elementHandle()).contentFrame();
  return (await (await host.locator('iframe#active-frame').elementHandle()).contentFrame());
}

/** The texts of the open quick pick's rows, once a row containing `last` is shown. */
async function quickItems(page, last) {
  const rows = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
  await rows.filter({ hasText: last }).first().waitFor({ timeout: 20000 });
  // Rows are positioned by their data-index; the DOM order need not be the list's.
  const indexed = await rows.evaluateAll((els) => els.map((el) => [Number(el.getAttribute('data-index')), el.innerText]));
  return indexed.sort((a, b) => a[0] - b[0]).map(([, t]) => t.replace(/\s+/g, ' ').trim());
}

async function pickQuickItem(page, text) {
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: text }).first();
  await row.waitFor({ timeout: 20000 });
  await row.click();
}

/** 'written' when the variant's report appears, else the text of the error PruneLens shows. */
async function waitForOutcome(page, folder) {
  const end = Date.now() + SESSION_TIMEOUT;
  const error = page.locator('.notifications-toasts .notification-toast', { has: page.locator('.codicon-error'), hasText: 'PruneLens:' }).first();
  while (Date.now() < end) {
    if (existsSync(join(folder, 'pruning-report.json'))) return 'written';
    if (await error.isVisible().catch(() => false)) return (await error.locator('.notification-list-item-message').innerText()).trim();
    await page.waitForTimeout(250);
  }
  return 'timed out';
}

async function runCommand(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 15000 });
  await input.fill(`>${title}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first().waitFor({ timeout: 15000 });
  await page.keyboard.press('Enter');
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}
