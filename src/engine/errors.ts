/**
 * An error caused by the user's input (a file, a config field). It is shown as one line,
 * never with a stack trace: `<file>: <field>: <problem>. <fix>`.
 */
export class UserError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly fix?: string;

  constructor(message: string, where: { file?: string; field?: string; fix?: string } = {}) {
    super(UserError.format(message, where));
    this.name = 'UserError';
    this.file = where.file;
    this.field = where.field;
    this.fix = where.fix;
  }

  private static format(message: string, where: { file?: string; field?: string; fix?: string }): string {
    const parts: string[] = [];
    if (where.file) parts.push(where.file);
    if (where.field) parts.push(where.field);
    parts.push(message);
    let line = parts.join(': ');
    if (where.fix) line += `. ${where.fix}`;
    return line;
  }
}

/** Thrown when a session is cancelled; sessions unwind and clean up on it. */
export class CancelledError extends Error {
  constructor() {
    super('Session cancelled');
    this.name = 'CancelledError';
  }
}

/** One line for the user: UserError messages as they are, anything else with its type. */
export function describeError(err: unknown): string {
  if (err instanceof UserError || err instanceof CancelledError) return err.message;
  if (err instanceof Error) return `${err.name === 'Error' ? 'Internal error' : err.name}: ${err.message.split('\n')[0]}`;
  return String(err);
}

/** The first line of an error's message (a runtime's raw error, quoted inside a one-line UserError). */
export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}
