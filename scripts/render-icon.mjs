// Renders the Marketplace icon, media/icon.png (128×128), from the activity-bar drawing (media/icon.svg)
// on a dark tile, with headless Chromium. Run by hand when the drawing changes: node scripts/render-icon.mjs
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const drawing = readFileSync('media/icon.svg', 'utf8')
  .replace(/<!--[\s\S]*?-->/g, '')
  .replace(/width="24" height="24"/, 'x="14" y="14" width="100" height="100"')
  .replace(/stroke="currentColor"/, 'stroke="#7fd4ff"');
const tile = `<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128" viewBox="0 0 128 128">
  <rect width="128" height="128" rx="24" fill="#1b2a3a"/>${drawing}</svg>`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 128, height: 128 }, deviceScaleFactor: 1 });
  await page.setContent(`<html><body style="margin:0;background:transparent">${tile}</body></html>`);
  await page.locator('svg').first().screenshot({ path: 'media/icon.png', omitBackground: true });
} finally {
  await browser.close();
}
