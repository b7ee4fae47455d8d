// One error class for every failure a user can cause or fix; the CLIs map it to an exit code.

/** Exit codes, as conntrack-tools uses them: 0 ok, 1 runtime, 2 usage, 3 version. */
export const Exit = {
  OK: 0,
  RUNTIME: 1,
  USAGE: 2,
  VERSION: 3,
} as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/**
 * A failure with a stable code and a message that says what happened, then what to do.
 * CLIs print `message` alone (no stack) and exit with `exit`.
 */
export class CtError extends Error {
  readonly code: string;
  readonly exit: ExitCode;

  constructor(code: string, message: string, options: { exit?: ExitCode; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CtError';
    this.code = code;
    this.exit = options.exit ?? Exit.RUNTIME;
  }
}

/** The errno-style code of a Node system error, if it is one. */
export function sysCode(err: unknown): string | undefined {
  if (err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string') {
    return err.code;
  }
  return undefined;
}
