// The one place a CLI turns an outcome into an exit code and a message (no stacks for user errors).
import { CommanderError, InvalidArgumentError } from 'commander';
import { colorFor, paint } from './color.js';
import { CtError, Exit, sysCode } from './errors.js';
import { printable, safeText } from './printable.js';

/** Where a CLI's messages go: stderr, or a test's stand-in. */
export interface MessageStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

/**
 * The one printer of a CLI's warnings and notes. Messages quote journals (host names, file
 * names, chain names, header options) and the command line; whatever they hold, each is escaped
 * here as one line (common/printable.ts), so no caller can forget to and no message can move
 * the cursor, retitle the terminal or fake a line of its own.
 */
export function messagePrinter(
  name: string,
  stream: MessageStream = process.stderr,
): { warn(message: string): void; note(message: string): void } {
  const color = colorFor(stream);
  return {
    warn: (m) => {
      stream.write(`${paint(color, 'boldYellow', `${name}: warning:`)} ${printable(m)}\n`);
    },
    note: (m) => {
      stream.write(`${name}: note: ${printable(m)}\n`);
    },
  };
}

/**
 * A commander argParser from a parser that throws CtError (parseCollapse, say): its message
 * becomes commander's usage error, so both CLIs reject a bad value with the same words, exit 2.
 */
export function optionParser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw err instanceof CtError ? new InvalidArgumentError(err.message) : err;
    }
  };
}

/** Parses a positive number of seconds (`--duration 30`, `--duration 1.5`) for commander. */
export function parseSeconds(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) {
    throw new InvalidArgumentError('give a positive number of seconds, e.g. 30 or 1.5.');
  }
  return n;
}

/** Parses a byte size with an optional K/M/G suffix (powers of 1024), e.g. `8M`. */
export function parseBytes(value: string): number {
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(value.trim());
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[(m?.[2] ?? '').toUpperCase()];
  const n = m && unit !== undefined ? Number(m[1]) * unit : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError('give a byte count, optionally with K, M or G, e.g. 64M.');
  }
  return n;
}

/**
 * Runs a CLI's main function and exits: CtError → its message and exit code; commander's usage
 * errors → exit 2 (commander already printed them); anything else is a bug → stack, exit 1.
 */
export async function runCli(name: string, main: () => Promise<number | undefined>): Promise<void> {
  // A reader that went away (`ct-analyze --help | head`) ends the output, not the program with a
  // stack trace; report writers check for EPIPE themselves and stop writing.
  process.stdout.on('error', (err) => {
    if (sysCode(err) !== 'EPIPE') throw err;
  });
  let code: number;
  try {
    code = (await main()) ?? Exit.OK;
  } catch (err) {
    code = reportError(name, err);
  }
  // Let stdout/stderr drain (a pipe may be slow) before the process ends.
  process.exitCode = code;
}

/**
 * An error message as lines: the lines it was written with (nft's messages quote the ruleset
 * line and a caret under it), each escaped, tabs as spaces so the caret stays under its
 * column, and every line after the first indented: no line of a file's own can start at the
 * margin and pass for one of the tool's.
 */
export function messageLines(message: string): string {
  return message
    .split('\n')
    .map((l) => printable(l.replaceAll('\t', '    ')))
    .join('\n  ');
}

function reportError(name: string, err: unknown): number {
  if (err instanceof CommanderError) {
    // --help and --version end through here too, with exit code 0.
    if (err.exitCode === 0) return Exit.OK;
    return Exit.USAGE;
  }
  if (err instanceof CtError) {
    process.stderr.write(
      `${paint(colorFor(process.stderr), 'boldRed', `${name}:`)} ${messageLines(err.message)}\n`,
    );
    return err.exit;
  }
  process.stderr.write(
    `${name}: internal error (please report it): ${safeText(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`,
  );
  return Exit.RUNTIME;
}
