/** Runs every benchmark in turn; each prints a markdown table and writes bench/results/<name>.json. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const benches = ['analyze', 'train-step', 'method-table', 'startup'];
const only = process.argv[2];
let failed = 0;
for (const name of benches) {
  if (only && only !== name) continue;
  const file = `bench/${name}.ts`;
  if (!existsSync(file)) continue;
  console.log(`\n## ${name}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
