import { fork, type ChildProcess } from 'node:child_process';
import { relaxedSimdExecArgv } from '../util/relaxed-simd.js';
import { isEngineEvent, isTerminalEvent, type EngineEvent, type ErrorEvent, type EngineRequest, type TerminalEvent } from '../../protocol/events.js';

export interface EngineRunOptions {
  /** Path of the built engine entry (dist/engine.js). */
  enginePath: string;
  onEvent?: (event: EngineEvent) => void;
  /** The engine's own diagnostics (stderr), for a log. */
  onStderr?: (text: string) => void;
  /** Extra Node flags, e.g. ['--max-old-space-size=4096']. */
  execArgv?: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** How long a cancelled engine may take to stop before it is killed. */
  cancelGraceMs?: number;
}

export interface EngineRun {
  readonly pid: number | undefined;
  /** Resolves with the terminal event; a crash or kill becomes an `error` event. Never rejects. */
  readonly result: Promise<TerminalEvent>;
  cancel(): void;
  kill(): void;
}

/** Starts an engine child process for one request (run, analyze or sensitivity). */
export function startEngine(request: Exclude<EngineRequest, { type: 'cancel' }>, options: EngineRunOptions): EngineRun {
  const stderrTail: string[] = [];
  let child: ChildProcess;
  let terminal: TerminalEvent | undefined;
  let cancelled = false;
  let killTimer: NodeJS.Timeout | undefined;

  const result = new Promise<TerminalEvent>((resolve) => {
    const settle = (event: TerminalEvent) => {
      if (killTimer) clearTimeout(killTimer);
      resolve(event);
    };
    try {
      child = fork(options.enginePath, [], {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        // Relaxed SIMD for the training kernels where this runtime needs a flag for it (Node 20–21).
        execArgv: [...(options.execArgv ?? []), ...relaxedSimdExecArgv(options.execArgv ?? [])],
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
        serialization: 'json',
      });
    } catch (err) {
      const event: ErrorEvent = { type: 'error', message: `Could not start the PruneLens engine: ${(err as Error).message}` };
      options.onEvent?.(event);
      settle(event);
      return;
    }
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      options.onStderr?.(chunk);
      stderrTail.push(chunk);
      while (stderrTail.join('').length > 8000) stderrTail.shift();
    });
    child.on('message', (message: unknown) => {
      if (!isEngineEvent(message) || terminal) return;
      if (isTerminalEvent(message)) terminal = message;
      options.onEvent?.(message);
    });
    child.on('error', (err) => {
      if (terminal) return;
      terminal = { type: 'error', message: `PruneLens engine failed: ${err.message}` };
      options.onEvent?.(terminal);
    });
    child.on('exit', (code, signal) => {
      if (!terminal) {
        terminal = crashEvent(code, signal, stderrTail.join(''), cancelled);
        options.onEvent?.(terminal);
      }
      settle(terminal);
    });
    child.send(request);
  });

  return {
    get pid() { return child?.pid; },
    result,
    cancel() {
      if (terminal || !child || child.exitCode !== null) return;
      cancelled = true;
      if (child.connected) child.send({ type: 'cancel' });
      killTimer = setTimeout(() => child.kill('SIGKILL'), options.cancelGraceMs ?? 15000);
    },
    kill() {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

function crashEvent(code: number | null, signal: NodeJS.Signals | null, stderr: string, cancelled: boolean): ErrorEvent {
  if (cancelled) return { type: 'error', message: 'Session cancelled', cancelled: true };
  if (/heap out of memory|Allocation failed|ERR_WORKER_OUT_OF_MEMORY/i.test(stderr)) {
    return { type: 'error', message: 'The PruneLens engine ran out of memory. Use a smaller batch size, a smaller calibration set, or raise the engine memory limit.' };
  }
  const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
  // Node closes a fatal error with its own version line; the line before it says what went wrong.
  const lastLine = stderr.trim().split('\n').filter((l) => l.trim() && !/^\s+at /.test(l) && !/^Node\.js v\d/.test(l.trim())).pop();
  return { type: 'error', message: `The PruneLens engine ${how} before finishing${lastLine ? `: ${lastLine.slice(0, 300)}` : ''}` };
}
