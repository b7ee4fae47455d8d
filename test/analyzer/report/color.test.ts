// Colours: only on a terminal, never with NO_COLOR, and never a change to a line's text.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { colorCheckLine } from '../../../analyzer/check/report.js';
import { colorDiffLine } from '../../../analyzer/diff/diff.js';
import { chunked, colorReportLine } from '../../../analyzer/report/text.js';
import { colorFor, colorLines } from '../../../common/color.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { checkProperty } from '../../helpers/arbitraries.js';
import { SEED_EVENTS, tempDir, writeJournal } from '../fixtures.js';

// biome-ignore lint/suspicious/noControlCharactersInRegex: the escape sequences are the point.
const SGR = /\x1b\[[0-9;]*m/g;
const tty = { isTTY: true };

t.test('color: a terminal gets colours unless NO_COLOR or TERM=dumb; FORCE_COLOR forces', (t) => {
  t.equal(colorFor(tty, {}), true);
  t.equal(colorFor({ isTTY: false }, {}), false, 'a pipe or a file');
  t.equal(colorFor({}, {}), false, 'a stream that does not say');
  t.equal(colorFor(tty, { NO_COLOR: '1' }), false);
  t.equal(colorFor(tty, { NO_COLOR: '' }), true, 'NO_COLOR set but empty does not count');
  t.equal(colorFor(tty, { TERM: 'dumb' }), false);
  t.equal(colorFor({ isTTY: false }, { FORCE_COLOR: '1' }), true);
  t.equal(colorFor({ isTTY: false }, { FORCE_COLOR: '0' }), false);
  t.equal(colorFor(tty, { FORCE_COLOR: '1', NO_COLOR: '1' }), false, 'NO_COLOR wins');
  t.end();
});

t.test('color: off gives the chunks unchanged; on only wraps lines, never alters text', (t) => {
  const line = fc.stringMatching(/^[^\n]*$/);
  checkProperty(
    t,
    fc.property(
      fc.array(fc.oneof(line, fc.constantFrom('# WARNING: x', '# c', '+ a', '- b', '~ c')), {
        maxLength: 30,
      }),
      fc.integer({ min: 1, max: 40 }),
      (lines, size) => {
        const chunks = [
          ...chunked(
            lines.map((l) => `${l}\n`),
            size,
          ),
        ];
        for (const color of [colorReportLine, colorDiffLine, colorCheckLine]) {
          const off = [...colorLines(chunks, false, color)];
          if (off.join('') !== chunks.join('')) throw new Error('colours off changed the output');
          const on = [...colorLines(chunks, true, color)].join('');
          if (on.replace(SGR, '') !== chunks.join('')) throw new Error('colours changed the text');
          if (on.split('\n').length !== chunks.join('').split('\n').length) {
            throw new Error('colours changed the line count');
          }
        }
      },
    ),
  );
  t.end();
});

const ESC = '\x1b[';
t.test('color: warnings, blocked flows and diff lines get their colours', (t) => {
  t.equal(colorReportLine('# WARNING: lost'), `${ESC}1;33m# WARNING: lost${ESC}0m`);
  t.equal(colorReportLine('# coverage: 1'), `${ESC}2m# coverage: 1${ESC}0m`);
  t.equal(colorReportLine(' TCPv4 [0] x (confirmed)'), ` TCPv4 [0] x${ESC}32m (confirmed)${ESC}0m`);
  t.equal(colorReportLine(' UDPv4 [0] x'), ' UDPv4 [0] x', 'an unconfirmed flow stays plain');
  t.equal(colorDiffLine('+ TCPv4 a'), `${ESC}32m+ TCPv4 a${ESC}0m`);
  t.equal(colorDiffLine('- TCPv4 a'), `${ESC}31m- TCPv4 a${ESC}0m`);
  t.equal(colorCheckLine('blocked  TCPv4 a'), `${ESC}1;31mblocked  TCPv4 a${ESC}0m`);
  t.end();
});

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');

t.test('color: the CLI colours a terminal, and never a pipe, a file or NO_COLOR', (t) => {
  const dir = tempDir(t, 'color');
  const journal = join(dir, 'seed.mpk');
  writeJournal(journal, [SEED_EVENTS]);
  const env = (over: Record<string, string>) => {
    const e: Record<string, string | undefined> = { ...process.env, ...over };
    delete e.FORCE_COLOR;
    delete e.NO_COLOR;
    return { ...e, ...over };
  };
  const piped = spawnSync(process.execPath, [CLI, journal], { encoding: 'utf8', env: env({}) });
  t.equal(piped.status, 0);
  t.notMatch(piped.stdout, SGR, 'a pipe gets plain text');
  // A real terminal: script(1) runs the CLI on a pseudo-terminal and copies what it printed.
  const onTty = (over: Record<string, string>) =>
    spawnSync(
      'script',
      ['-qec', `${process.execPath} ${CLI} ${journal} 2>/dev/null`, '/dev/null'],
      {
        encoding: 'utf8',
        env: env({ TERM: 'xterm', ...over }),
      },
    );
  const colored = onTty({});
  if (colored.error !== undefined) {
    t.fail(`script(1) from util-linux is needed for the terminal test: ${colored.error.message}`);
    return t.end();
  }
  t.equal(colored.status, 0);
  t.ok(colored.stdout.includes(`${ESC}1;33m# WARNING: `), 'warnings stand out on a terminal');
  t.equal(
    colored.stdout.replace(SGR, '').replace(/\r\n/g, '\n'),
    piped.stdout,
    'the same text under the colours',
  );
  const noColor = onTty({ NO_COLOR: '1' });
  t.equal(noColor.status, 0);
  t.notMatch(noColor.stdout, SGR, 'NO_COLOR is honoured on a terminal');
  const out = join(dir, 'report.txt');
  const toFile = spawnSync(
    'script',
    ['-qec', `${process.execPath} ${CLI} -o ${out} ${journal}`, '/dev/null'],
    {
      encoding: 'utf8',
      env: env({ TERM: 'xterm' }),
    },
  );
  t.equal(toFile.status, 0);
  t.equal(readFileSync(out, 'utf8'), piped.stdout, '-o writes plain text from a terminal too');
  t.end();
});
