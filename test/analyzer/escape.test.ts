// Journals from strangers: no string in one reaches a terminal as a control, bidi or invisible character.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import t from 'tap';
import { type FlowFormat, runAnalyze } from '../../analyzer/commands/run/analyze.js';
import { runCheck } from '../../analyzer/commands/run/check.js';
import { runDiff } from '../../analyzer/commands/run/diff.js';
import { runRedact } from '../../analyzer/commands/run/redact.js';
import { runRules } from '../../analyzer/commands/run/rules.js';
import { runVerify } from '../../analyzer/commands/run/verify.js';
import { chainWarnings } from '../../analyzer/core/coverage.js';
import { DEFAULT_SCAN } from '../../analyzer/rules/evidence.js';
import { DEFAULT_MIN_DENSITY } from '../../analyzer/rules/planner.js';
import { messagePrinter } from '../../common/cli.js';
import { PACKAGE_ROOT } from '../../common/package.js';
import { printable, safeChunks, safeText } from '../../common/printable.js';
import type { CtEvent } from '../../journal/event.js';
import { EVENT_FIELDS, FrameKind, MAGIC, RUN_ID_SIZE } from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { encodeMap } from '../../journal/meta-codec.js';
import { JournalWriter } from '../../journal/writer.js';
import { checkProperty } from '../helpers/arbitraries.js';
import { HEADER } from '../helpers/journals.js';
import { ev, SEED_EVENTS, tempDir } from './fixtures.js';

/** ct-analyze rules' planning options at their defaults (its command object needs them all). */
const RULES_PLAN = {
  outputChain: 'log',
  minDensity: DEFAULT_MIN_DENSITY,
  scan: DEFAULT_SCAN,
} as const;

const dir = tempDir(t, 'escape');
const keyFile = join(dir, 'redact.key');
writeFileSync(keyFile, Buffer.alloc(32, 7), { mode: 0o600 });
const ruleset = join(dir, 'ruleset.nft');
writeFileSync(
  ruleset,
  'table inet f {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    tcp dport 22 drop\n  }\n}\n',
);

/**
 * What no output may hold: C0 controls but tab and newline, DEL, C1 controls, line and
 * paragraph separators, lone surrogates, format characters (the bidi embeddings, overrides,
 * isolates and marks are all Cf) and the other default-ignorable (invisible) characters.
 */
const FORBIDDEN =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point.
  /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\p{Cf}\p{Cs}\p{Default_Ignorable_Code_Point}]/u;

/** The bidi controls the audit names, one by one: each must be in FORBIDDEN's reach. */
const BIDI = [
  ...'\u202a\u202b\u202c\u202d\u202e',
  ...'\u2066\u2067\u2068\u2069',
  '\u200e',
  '\u200f',
  '\u061c',
];

/** The first forbidden character of `text` and where, for a readable failure; undefined: none. */
function forbidden(text: string, crlf = false): string | undefined {
  // CSV rows end in CRLF (RFC 4180): that CR, and only that one, belongs to the format.
  const s = crlf ? text.replace(/\r\n/g, '\n') : text;
  const m = FORBIDDEN.exec(s);
  if (m === null) return undefined;
  const code = (m[0].codePointAt(0) as number).toString(16);
  return `U+${code} at ${m.index}: ${JSON.stringify(s.slice(Math.max(0, m.index - 40), m.index + 20))}`;
}

/** A stream that keeps what is written to it as strings (no UTF-8 round trip hides anything). */
function sink(): { out: Writable; text: () => string } {
  let text = '';
  const out = new Writable({
    decodeStrings: false,
    write(chunk, _enc, done) {
      text += String(chunk);
      done();
    },
  });
  return { out, text: () => text };
}

/** stderr as ct-analyze's message printer writes it. */
function stderr(): { printer: ReturnType<typeof messagePrinter>; text: () => string } {
  let text = '';
  const printer = messagePrinter('ct-analyze', {
    write: (s: string) => {
      text += s;
    },
  });
  return { printer, text: () => text };
}

/** Pieces of a hostile string: what the audit used, bidi controls, and what breaks formats. */
const PIECES = [
  '\x1b]0;pwned\x07',
  '\x1b[2J',
  '\x1b[H',
  '\nALL FLOWS VERIFIED OK\n',
  '\x9b2J',
  '\x00',
  '\r',
  '\t',
  '\x7f',
  ...BIDI,
  '\u200b',
  '\u200d',
  '\u2028',
  '\ufeff',
  '\u{e0041}',
  '\ud800',
  '*/',
  '"',
  '|',
  '`',
  '[x](http://e)',
  ';=6*7',
  ',+1',
  'é',
  'fw1',
];
const arbHostile = fc
  .array(fc.oneof(fc.constantFrom(...PIECES), fc.string({ unit: 'binary', maxLength: 4 })), {
    minLength: 1,
    maxLength: 6,
  })
  .map((parts) => parts.join(''));

/** A file name that holds the hostile text: no `/` nor NUL, short enough for any file system. */
let serial = 0;
const fileName = (s: string, ext = '.mpk') =>
  `${serial++}-${s.replace(/[/\0]/g, '_').slice(0, 60)}${ext}`;
const ifName = (s: string) => s.slice(0, 64) || 'x';

interface Strings {
  host: string;
  kernel: string;
  netns: string;
  tool: string;
  option: string;
  ifname: string;
  file: string;
}

const arbStrings = fc.record({
  host: arbHostile,
  kernel: arbHostile,
  netns: arbHostile,
  tool: arbHostile,
  option: arbHostile,
  ifname: arbHostile,
  file: arbHostile,
});

/**
 * A journal whose every free-text field holds `s`: host, kernel, netns, tool, an unknown
 * option key and value, importedFrom's tool and file, interface names in the header and in a
 * later address set; its file name too. With `chained`, it is journal 2 of a run whose
 * journal 1 is not given (a warning naming both). A gap makes a loss warning.
 */
function hostileJournal(s: Strings, events: CtEvent[], chained: boolean): string {
  const path = join(dir, fileName(s.file));
  const address = (ifname: string, last: number) => ({
    ifname: ifName(ifname),
    family: 4 as const,
    address: Uint8Array.of(192, 168, 100, last),
    prefix: 24,
  });
  const w = JournalWriter.create(path, {
    ...HEADER,
    tool: { name: s.tool, version: s.tool },
    host: s.host,
    kernel: s.kernel,
    netns: s.netns,
    options: {
      ...HEADER.options,
      [`k${s.option}`]: s.option,
      collapse: s.option,
      importedFrom: { tool: s.tool, file: s.option },
    },
    addresses: [address(s.ifname, 118), address(`${s.ifname}2`, 111)],
    ...(chained
      ? {
          chain: {
            run: new Uint8Array(RUN_ID_SIZE).fill(3),
            sequence: 2,
            previous: { sha256: new Uint8Array(32), file: 'fw-000001.mpk' },
          },
        }
      : {}),
  });
  w.append(events);
  w.noteAddresses({ time: HEADER.start + 5, addresses: [address(`${s.ifname}3`, 203)] });
  w.appendGap({
    from: HEADER.start + 10,
    to: HEADER.start + 20,
    lost: 3,
    lostKnown: true,
    cause: 'ENOBUFS',
    resync: -1,
  });
  w.close({ stop: HEADER.start + 60_000_000 });
  return path;
}

/** A string as a journal gives it back: UTF-8 has no lone surrogates (each becomes U+FFFD). */
const stored = (s: string) => Buffer.from(s, 'utf8').toString('utf8');

/** Every subcommand over the two journals; each output by name, with what it wrote. */
async function everyOutput(a: string, b: string): Promise<Map<string, string>> {
  const outputs = new Map<string, string>();
  type Io = ReturnType<typeof messagePrinter>;
  const run = async (name: string, fn: (out: Writable, io: Io) => unknown) => {
    const o = sink();
    const e = stderr();
    await fn(o.out, e.printer);
    outputs.set(`${name} stdout`, o.text());
    outputs.set(`${name} stderr`, e.text());
  };
  const collapse = { kind: '1024' } as const;
  const show = { direction: true, nat: true, hosts: true };
  for (const format of ['text', 'md', 'csv', 'json', 'html'] as FlowFormat[]) {
    await run(`analyze --format ${format}`, (stdout, io) =>
      runAnalyze({ journals: [a, b], format, collapse, show }, { stdout, ...io }),
    );
  }
  for (const format of ['text', 'json'] as const) {
    await run(`verify --format ${format}`, (stdout) =>
      runVerify({ journals: [a, b], format }, { stdout }),
    );
    await run(`diff --format ${format}`, (stdout, io) =>
      runDiff({ before: [a], after: [b], format, collapse, exitCode: false }, { stdout, ...io }),
    );
    await run(`check --format ${format}`, (stdout, io) =>
      runCheck({ ruleset, journals: [a, b], format, collapse, exitCode: false }, { stdout, ...io }),
    );
  }
  for (const format of ['nft', 'iptables'] as const) {
    await run(`rules --format ${format}`, (stdout, io) =>
      runRules(
        {
          journals: [a, b],
          format,
          policy: 'reject',
          log: true,
          maxPrefix4: 24,
          maxPrefix6: 64,
          ...RULES_PLAN,
          collapse,
        },
        { stdout, ...io },
      ),
    );
  }
  await run('redact', (_stdout, io) =>
    runRedact({ inputs: [b], output: join(dir, fileName('redacted')), keyFile, force: false }, io),
  );
  return outputs;
}

t.test('printable: controls, bidi and invisible characters become escapes; text stays', (t) => {
  t.equal(
    printable('vm\n TCPv4 [0]\r\x1b[2J\u2028ok\x7f\x9b'),
    'vm\\x0a TCPv4 [0]\\x0d\\x1b[2J\\u2028ok\\x7f\\x9b',
  );
  t.equal(printable('a\u202eb\u2066c\u200ed\u061ce'), 'a\\u202eb\\u2066c\\u200ed\\u061ce');
  t.equal(printable('zero\u200bwidth\ufeff\u{e0041}'), 'zero\\u200bwidth\\ufeff\\u{e0041}');
  t.equal(printable('lone \ud800'), 'lone \\ud800');
  t.equal(printable('net:[4026531840] é → 東京 \\x1b'), 'net:[4026531840] é → 東京 \\x1b');
  for (const c of BIDI) t.notOk(FORBIDDEN.test(printable(`x${c}y`)), `U+${c.codePointAt(0)}`);
  t.end();
});

t.test('safeText: a report keeps its lines, tabs and CRLF; JSON keeps every value', (t) => {
  t.equal(safeText('a\tb\r\nc\n'), 'a\tb\r\nc\n');
  t.equal(safeText('x\ry\x1b]0;t\x07\u202e'), 'x\\u000dy\\u001b]0;t\\u0007\\u202e');
  t.equal(safeText('\u{e0041}'), '\\udb40\\udc41', 'a JSON escape per UTF-16 unit');
  t.strictSame([...safeChunks(['a\r', '\nb\r', 'c\r'])].join(''), 'a\r\nb\\u000dc\\u000d');
  checkProperty(
    t,
    fc.property(fc.jsonValue(), (v) => verifyJson(v)),
  );
  checkProperty(
    t,
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const json = safeText(JSON.stringify({ s }));
      assert.equal(forbidden(json), undefined);
      assert.deepEqual(JSON.parse(json), { s });
    }),
  );
  t.end();
});

function verifyJson(v: unknown): void {
  const json = safeText(JSON.stringify(v, null, 2));
  assert.equal(forbidden(json), undefined);
  assert.deepEqual(JSON.parse(json), JSON.parse(JSON.stringify(v)));
}

t.test('messages: the one printer writes each message as one line, escaped', (t) => {
  const e = stderr();
  e.printer.warn('x.mpk: \x1b]0;pwned\x07\x1b[2J\nALL FLOWS VERIFIED OK\u202e');
  e.printer.note('\x9b2J done');
  t.equal(
    e.text(),
    'ct-analyze: warning: x.mpk: \\x1b]0;pwned\\x07\\x1b[2J\\x0aALL FLOWS VERIFIED OK\\u202e\nct-analyze: note: \\x9b2J done\n',
  );
  t.end();
});

t.test(
  'escape: any string in any field of a journal leaves every subcommand’s stdout and stderr free of controls, bidi and invisible characters',
  async (t) => {
    const events = SEED_EVENTS;
    const later = [...SEED_EVENTS.slice(2), ev(6, '10.0.0.1', '10.0.0.2', 40000, 22, 0x0e)];
    const details = await fc.check(
      fc.asyncProperty(arbStrings, arbStrings, async (sa, sb) => {
        const a = hostileJournal(sa, events, false);
        const b = hostileJournal(sb, later, true);
        const outputs = await everyOutput(a, b);
        for (const [name, text] of outputs) {
          const bad = forbidden(text, name.startsWith('analyze --format csv'));
          assert.equal(bad, undefined, `${name}: ${bad}`);
        }
        // The strings did reach the outputs, escaped: the check above is not vacuous.
        const text = outputs.get('analyze --format text stdout') ?? '';
        assert.ok(
          text.includes(`host ${printable(stored(sa.host))},`),
          'the host, escaped, in the text',
        );
        assert.ok(text.includes(`netns ${printable(stored(sb.netns))},`), 'the netns, escaped');
        const warned = outputs.get('analyze --format text stderr') ?? '';
        assert.ok(warned.includes(printable(b)), 'the file name, escaped, in a warning');
        assert.ok(
          (outputs.get('redact stderr') ?? '').includes(printable(stored(`k${sb.option}`))),
          'the unknown option, escaped, in redact’s warning',
        );
      }),
      { numRuns: 25 },
    );
    if (details.failed) {
      t.fail(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
    } else t.pass(`property held for ${details.numRuns} runs`);
  },
);

t.test(
  'escape: rulesets hold no journal string: a hostile journal plans the clean one’s',
  async (t) => {
    const clean = {
      host: 'fw1',
      kernel: '6.1',
      netns: 'net:[1]',
      tool: 'conntracker',
      option: 'x',
      ifname: 'eth0',
      file: 'clean',
    };
    const hostile = {
      host: '\x1b]0;t\x07*/\n-A INPUT -j ACCEPT\n"',
      kernel: '*/ accept',
      netns: '\n}\ntable ip x {',
      tool: '\u202e',
      option: '";\n',
      ifname: 'e\nth0',
      file: 'h\x1b[2J',
    };
    for (const format of ['nft', 'iptables'] as const) {
      const texts: string[] = [];
      for (const s of [clean, hostile]) {
        const o = sink();
        const path = hostileJournal(s, SEED_EVENTS, false);
        await runRules(
          {
            journals: [path],
            format,
            policy: 'drop',
            log: false,
            maxPrefix4: 24,
            maxPrefix6: 64,
            ...RULES_PLAN,
            collapse: { kind: '1024' },
          },
          { stdout: o.out, warn: () => {} },
        );
        texts.push(o.text());
      }
      t.equal(texts[1], texts[0], `${format}: byte for byte the same ruleset`);
    }
    t.end();
  },
);

/** The audit's payload: retitle the terminal, clear it, print a verdict of its own. */
const PAYLOAD = '\x1b]0;pwned\x07\x1b[2J\x1b[H\nALL FLOWS VERIFIED OK\n';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['dist/analyzer/cli.js', ...args], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test(
  'escape: the audit’s journal (ESC ]0; title, ESC [2J clear, a fake "ALL FLOWS VERIFIED OK" line) moves no terminal in any subcommand',
  (t) => {
    // The audit's case: the payload as chain.previous.file. The decoder now refuses it.
    const chainPath = join(dir, 'audit-chain.mpk');
    const header = {
      ...HEADER,
      format: 1,
      eventFields: [...EVENT_FIELDS],
      chain: {
        run: Buffer.alloc(RUN_ID_SIZE, 9),
        sequence: 2,
        previous: { sha256: Buffer.alloc(32), file: PAYLOAD },
      },
    };
    writeFileSync(
      chainPath,
      Buffer.concat([MAGIC, encodeFrame(FrameKind.HEADER, encodeMap(header as never))]),
    );
    // The same payload where the decoder must take it: host, netns, file name.
    const s = {
      host: PAYLOAD,
      kernel: PAYLOAD,
      netns: PAYLOAD,
      tool: PAYLOAD,
      option: PAYLOAD,
      ifname: PAYLOAD,
      file: PAYLOAD,
    };
    const a = hostileJournal(s, SEED_EVENTS, false);
    const b = hostileJournal(s, SEED_EVENTS.slice(1), true);
    const out = join(dir, 'audit-redacted');
    const runs: Record<string, ReturnType<typeof cli>> = {
      'verify chain': cli('verify', chainPath),
      'analyze chain': cli(chainPath),
      verify: cli('verify', a, b, chainPath),
      'verify json': cli('verify', '--format', 'json', a, b),
      text: cli('--show', 'direction,nat,hosts', a, b),
      md: cli('--format', 'md', a, b),
      csv: cli('--format', 'csv', a, b),
      json: cli('--format', 'json', a, b),
      diff: cli('diff', a, b),
      'diff json': cli('diff', '--format', 'json', a, b),
      check: cli('check', '--ruleset', ruleset, a, b),
      'check json': cli('check', '--format', 'json', '--ruleset', ruleset, a, b),
      nft: cli('rules', a, b),
      iptables: cli('rules', '--format', 'iptables', a, b),
      redact: cli('redact', '--key', keyFile, '-o', out, b),
    };
    for (const [name, r] of Object.entries(runs)) {
      for (const stream of ['stdout', 'stderr'] as const) {
        const text = r[stream];
        t.notOk(
          text.includes('\x1b') || text.includes('\x07'),
          `${name} ${stream}: no ESC, no BEL`,
        );
        t.equal(forbidden(text, name === 'csv'), undefined, `${name} ${stream}: no control`);
        t.notOk(
          text.split('\n').some((l) => l.startsWith('ALL FLOWS VERIFIED OK')),
          `${name} ${stream}: no line of the journal's own`,
        );
      }
    }
    t.equal(runs['verify chain']?.status, 1);
    t.match(
      runs['verify chain']?.stdout,
      /: CORRUPT — .*header chain\.previous\.file holds the control or invisible character U\+001B/,
    );
    t.match(runs['analyze chain']?.stderr, /header chain\.previous\.file holds .* U\+001B/);
    t.match(
      runs.text?.stdout,
      /host \\x1b\]0;pwned\\x07\\x1b\[2J\\x1b\[H\\x0aALL FLOWS VERIFIED OK/,
    );
    t.match(runs.text?.stderr, /\\x1b\[2J/, 'the file name, escaped, in the warnings');
    t.equal(runs.text?.status, 0);
    t.end();
  },
);

t.test('escape: a chain warning built from a forged chain (decoder bypassed) is one line', (t) => {
  const run = new Uint8Array(RUN_ID_SIZE).fill(1);
  const [w] = chainWarnings([
    {
      path: 'x-000002.mpk',
      chain: { run, sequence: 2, previous: { sha256: new Uint8Array(32), file: PAYLOAD } },
    },
  ]);
  t.equal(forbidden(w ?? ''), undefined);
  t.notOk((w ?? '').includes('\n'), 'one line');
  t.match(w, /journal 1 \(\\x1b\]0;pwned\\x07/);
  t.end();
});
