/** Runs the built CLI's `prunelens prune <config> --json` for a bench and streams its events. */
import { spawn } from 'node:child_process';
import type { EngineEvent } from '../src/protocol/events.js';

/**
 * Starts `node dist/cli.js prune <configPath> --json` and hands each NDJSON event to `onEvent`
 * as it arrives, with its arrival time (performance.now()); resolves with stderr once the
 * process has ended.
 */
export function pruneWithCli(configPath: string, onEvent: (event: EngineEvent, at: number) => void): Promise<{ stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['dist/cli.js', 'prune', configPath, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '', stderr = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let event: EngineEvent;
        try { event = JSON.parse(line); } catch { continue; }
        onEvent(event, performance.now());
      }
    });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.on('close', () => resolve({ stderr }));
  });
}
