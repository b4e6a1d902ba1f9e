import type { ErrorEvent } from '../../protocol/events.js';
import { CancelledError, UserError, describeError } from '../errors.js';

/** The `error` event for anything a session, an analysis or the engine process threw. */
export function errorEvent(err: unknown): ErrorEvent {
  const event: ErrorEvent = { type: 'error', message: describeError(err) };
  if (err instanceof CancelledError) event.cancelled = true;
  if (err instanceof UserError) {
    event.file = err.file;
    event.field = err.field;
  }
  return event;
}
