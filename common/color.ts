// Colours for people at a terminal only: never in files or pipes, never with NO_COLOR set.

/** SGR sequences the reports use; each painted text ends with a reset. */
export const Sgr = {
  bold: '1',
  dim: '2',
  red: '31',
  green: '32',
  yellow: '33',
  boldRed: '1;31',
  boldYellow: '1;33',
} as const;
export type SgrName = keyof typeof Sgr;

/** `text` in the colour, or unchanged when `on` is false. */
export function paint(on: boolean, name: SgrName, text: string): string {
  return on ? `\x1b[${Sgr[name]}m${text}\x1b[0m` : text;
}

/**
 * Whether output to `stream` gets colours: only a terminal, and not when NO_COLOR is set to
 * anything non-empty (no-color.org) or TERM is `dumb`. FORCE_COLOR (non-empty, not `0`), the
 * npm tools' convention, turns them on anywhere, e.g. for `less -R`; NO_COLOR wins over it.
 */
export function colorFor(
  stream: { isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if ((env.NO_COLOR ?? '') !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '' && force !== '0') return true;
  return stream.isTTY === true && env.TERM !== 'dumb';
}

/**
 * Report chunks (whole lines, as analyzer/report/text.ts's `chunked` makes them) with each line passed
 * through `colorLine`; the chunks themselves when colours are off, so files stay byte-exact.
 */
export function* colorLines(
  chunks: Iterable<string>,
  on: boolean,
  colorLine: (line: string) => string,
): Generator<string> {
  if (!on) {
    yield* chunks;
    return;
  }
  for (const chunk of chunks) {
    const lines = chunk.split('\n');
    const last = lines.pop() ?? '';
    yield `${lines.map(colorLine).join('\n')}\n${last === '' ? '' : colorLine(last)}`;
  }
}
