// Integration-suite entry point (the extensionTestsPath contract): runs inside the extension
// host of a real VS Code and writes a JSON result file the runner reads for its counts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';

export interface SuiteResult {
  passed: number;
  failed: number;
  tests: { title: string; state: 'passed' | 'failed'; durationMs: number; error?: string }[];
}

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 60000, reporter: 'spec' });
  for (const file of fs.readdirSync(__dirname).sort()) if (file.endsWith('.test.js')) mocha.addFile(path.join(__dirname, file));
  const result: SuiteResult = { passed: 0, failed: 0, tests: [] };
  return new Promise((resolve, reject) => {
    const runner = mocha.run((failures) => {
      const out = process.env.PRUNELENS_E2E_RESULTS;
      if (out) fs.writeFileSync(out, JSON.stringify(result, null, 2));
      failures > 0 ? reject(new Error(`${failures} integration tests failed`)) : resolve();
    });
    runner.on('pass', (test) => {
      result.passed++;
      result.tests.push({ title: test.fullTitle(), state: 'passed', durationMs: test.duration ?? 0 });
    });
    runner.on('fail', (test, err: Error) => {
      result.failed++;
      result.tests.push({ title: test.fullTitle(), state: 'failed', durationMs: test.duration ?? 0, error: err.stack ?? err.message });
    });
  });
}
