/**
 * Engine child process: receives one `run`, `analyze` or `sensitivity` request over the IPC
 * channel, streams EngineEvents back and exits after the terminal event. A `cancel` request aborts
 * the session within one training step (the session then removes its partial output), or the
 * sensitivity analysis before its next point.
 */
import { isEngineRequest, type EngineEvent, type EngineRequest } from '../../protocol/events.js';
import { errorEvent } from '../session/error-event.js';

const abort = new AbortController();
let started = false;

function send(event: EngineEvent): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(event, undefined, {}, () => resolve());
  });
}

async function finish(code: number): Promise<void> {
  // Let the IPC channel flush the terminal event before leaving.
  if (process.connected) process.disconnect();
  setImmediate(() => process.exit(code));
}

async function handle(request: EngineRequest): Promise<void> {
  if (request.type === 'cancel') {
    abort.abort();
    return;
  }
  if (started) return;
  started = true;
  const pending: Promise<void>[] = [];
  const emit = (event: EngineEvent) => { pending.push(send(event)); };
  let ok = false;
  try {
    // Each request loads only its own code: an analysis starts only the cpu backend, no methods or training.
    if (request.type === 'analyze') {
      const { analyzeToEvents } = await import('../session/analyze.js');
      const result = await analyzeToEvents(request.modelPath, emit);
      ok = result.type === 'done';
    } else if (request.type === 'sensitivity') {
      const { sensitivityToEvents } = await import('../sensitivity/run.js');
      const result = await sensitivityToEvents(request, emit, abort.signal);
      ok = result.type === 'sensitivityDone';
    } else {
      const [{ loadConfig }, { executeSession }] = await Promise.all([import('../config/index.js'), import('../session/session.js')]);
      const config = loadConfig(request.configPath, { method: request.overrides?.method, output: request.overrides?.output, backend: request.overrides?.backend });
      const result = await executeSession(config, emit, { signal: abort.signal, dryRun: request.overrides?.dryRun, workspaceRoots: request.workspaceRoots });
      ok = result.type === 'done';
    }
  } catch (err) {
    emit(errorEvent(err));
  }
  await Promise.all(pending);
  await finish(ok ? 0 : 1);
}

process.on('message', (message: unknown) => {
  if (isEngineRequest(message)) void handle(message);
});

process.on('disconnect', () => {
  // The parent went away: stop work rather than run on unattended.
  abort.abort();
  setTimeout(() => process.exit(1), 5000).unref();
});

process.on('uncaughtException', (err) => {
  void send(errorEvent(err)).then(() => finish(1));
});
