// ct-analyze as a user runs it: the built dist/analyzer/cli.js, its output and exit codes.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT, TOOL_VERSION } from '../../common/package.js';
import { MAGIC } from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { encodeMap } from '../../journal/meta-codec.js';
import { gap, writeItems } from '../journal/fixtures.js';
import { SEED_EVENTS, SEED_LINES, tempDir, writeJournal } from './fixtures.js';

const CLI = join(PACKAGE_ROOT, 'dist', 'analyzer', 'cli.js');

function staleBuild(): string | undefined {
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    return `${CLI} is missing: run npm run build first`;
  }
  for (const dir of ['analyzer', 'journal', 'common']) {
    for (const f of readdirSync(join(PACKAGE_ROOT, dir))) {
      if (f.endsWith('.ts') && statSync(join(PACKAGE_ROOT, dir, f)).mtimeMs > built) {
        return `${dir}/${f} is newer than ${CLI}: run npm run build first`;
      }
    }
  }
  return undefined;
}

const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const STACK = /\n\s+at /;

const stale = staleBuild();
if (stale !== undefined) t.fail(stale);

const dir = tempDir(t, 'cli');
const journal = join(dir, 'seed.mpk');
writeJournal(journal, [SEED_EVENTS.slice(0, 4), SEED_EVENTS.slice(4)]);

/** The `#` block of the report of `journal` as fixtures write it (a clean, lossless recording). */
const SHORT =
  'the recording covers only 1 min 0 s: services used less often (nightly backups, updates, weekly jobs) are missing; record for at least a day, better a full week, before tightening the firewall';
const NO_TIMESTAMPS =
  'nf_conntrack_timestamp=0: last-seen times are when events arrived (an ended flow is reported 10–40 s late); set net.netfilter.nf_conntrack_timestamp=1 before recording';
const BLOCK = [
  `# conntracker flows from ${journal}: host testhost, kernel 6.18.0-test, netns net:[4026531840], 2025-11-27T07:53:20.000Z → 07:54:20.000Z (1 min 0 s)`,
  `# coverage: ${SEED_EVENTS.length} events recorded (new ${SEED_EVENTS.length}, update 0, destroy 0, snapshot 0); 0 events lost in 0 gaps`,
  '# settings: no table dump at start; filters: none; nf_conntrack_events=1, timestamp=0, acct=unknown',
  `# WARNING: ${SHORT}`,
  `# WARNING: ${NO_TIMESTAMPS}`,
];

/** A report split into its `#` block and the flow text after it. */
function split(out: string): { block: string[]; flows: string } {
  const lines = out.split('\n');
  const n = lines.findIndex((l) => !l.startsWith('# '));
  return { block: lines.slice(0, n), flows: lines.slice(n).join('\n') };
}

t.test(
  'cli: prints the coverage block then the seed table, notes skipped protocols on stderr, exit 0',
  async (t) => {
    const r = run(journal);
    t.equal(r.code, 0);
    t.equal(r.out, `${[...BLOCK, ...SEED_LINES].join('\n')}\n`);
    t.equal(split(r.out).flows, `${SEED_LINES.join('\n')}\n`, 'the seed lines byte for byte');
    t.equal(r.err, 'ct-analyze: note: 1 events belong to no flow table (IPv4 proto 47: 1)\n');
  },
);

t.test('cli: lost events are a WARNING in the report, on stderr, and in the JSON', async (t) => {
  const lossy = join(dir, 'lossy.mpk');
  writeItems(lossy, [SEED_EVENTS.slice(0, 4), gap({ lost: 1234 }), SEED_EVENTS.slice(4)]);
  const warning =
    '1234 events lost in 1 gap (kernel buffer overrun): flows may be missing; record with a larger --buffer-size';
  const r = run(lossy);
  t.equal(r.code, 0, 'loss is reported, not a failure');
  const { block, flows } = split(r.out);
  t.equal(
    block[1],
    `# coverage: ${SEED_EVENTS.length} events recorded (new ${SEED_EVENTS.length}, update 0, destroy 0, snapshot 0); 1234 events lost in 1 gap`,
  );
  t.equal(block[3], `# WARNING: ${warning}`);
  t.strictSame(block.slice(4), BLOCK.slice(3), 'then the warnings every fixture journal has');
  t.equal(flows, `${SEED_LINES.join('\n')}\n`);
  t.match(r.err, `ct-analyze: warning: ${lossy}: ${warning}\n`);
  const json = run('--format', 'json', lossy, journal);
  const doc = JSON.parse(json.out);
  t.same(
    doc.journals.map((j: { coverage: { lost: number; gaps: number; warnings: string[] } }) => [
      j.coverage.lost,
      j.coverage.gaps,
      j.coverage.warnings,
    ]),
    [
      [1234, 1, [warning, SHORT, NO_TIMESTAMPS]],
      [0, 0, [SHORT, NO_TIMESTAMPS]],
    ],
  );
  const both = split(run(lossy, journal).out).block;
  t.equal(
    both.at(-1),
    `# coverage of all 2 journals: ${2 * SEED_EVENTS.length} events recorded (new ${2 * SEED_EVENTS.length}, update 0, destroy 0, snapshot 0); 1234 events lost in 1 gap`,
  );
  t.equal(both.length, BLOCK.length + 1 + BLOCK.length + 1);
});

t.test('cli: --format json prints one parseable document', async (t) => {
  const r = run('--format', 'json', '--collapse', 'none', journal);
  t.equal(r.code, 0);
  const doc = JSON.parse(r.out);
  t.equal(doc.format, 'conntracker-flows');
  t.equal(doc.collapse, 'none');
  t.equal(doc.journals[0].path, journal);
  t.equal(doc.journals[0].complete, true);
  t.equal(doc.flows.length, SEED_LINES.length + 1, 'the two .111 flows stay apart uncollapsed');
});

t.test('cli: -o writes the report to the file, nothing on stdout, no temporary left', async (t) => {
  const out = join(dir, 'flows.txt');
  writeFileSync(out, 'previous report\n');
  const r = run('-o', out, journal);
  t.equal(r.code, 0);
  t.equal(r.out, '');
  t.equal(readFileSync(out, 'utf8'), `${[...BLOCK, ...SEED_LINES].join('\n')}\n`);
  t.strictSame(
    readdirSync(dir).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

t.test('cli: an unknown option or bad value is a usage error, exit 2, with a hint', async (t) => {
  for (const args of [
    ['--bogus', journal],
    ['--format', 'xml', journal],
    ['--collapse', '7', journal],
    [],
  ]) {
    const r = run(...args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, /^error: .*\n\(run ct-analyze --help for usage\)\n$/);
    t.notMatch(r.err, STACK);
    t.equal(r.out, '');
  }
});

t.test('cli: a missing journal is a clear message, exit 1, no stack', async (t) => {
  const r = run(join(dir, 'nope.mpk'));
  t.equal(r.code, 1);
  t.match(r.err, /^ct-analyze: cannot open .*nope\.mpk: no such file/);
  t.notMatch(r.err, STACK);
});

t.test('cli: a torn tail is a warning and the complete frames are still analyzed', async (t) => {
  const torn = join(dir, 'torn.mpk');
  writeJournal(torn, [SEED_EVENTS.slice(0, 4), SEED_EVENTS.slice(4)], false);
  truncateSync(torn, statSync(torn).size - 5);
  const r = run(torn);
  t.equal(r.code, 0);
  t.match(
    r.err,
    /ct-analyze: warning: .*torn\.mpk: ignored \d+ trailing bytes \(recording did not end cleanly\)/,
  );
  const { block, flows } = split(r.out);
  t.match(
    block[3],
    /^# WARNING: the recording did not end cleanly \(no trailer; \d+ torn bytes ignored\)/,
  );
  t.equal(flows, `${SEED_LINES.slice(0, 3).join('\n')}\n`);
});

t.test('cli: a journal of a newer format exits 3 and says to upgrade', async (t) => {
  const newer = join(dir, 'v3.mpk');
  const header = { format: 3, tool: { name: 'conntracker', version: '9.0.0' } };
  const frame = encodeFrame(1, encodeMap(header as unknown as Parameters<typeof encodeMap>[0]));
  writeFileSync(newer, Buffer.concat([MAGIC, frame]));
  const r = run(newer);
  t.equal(r.code, 3);
  t.match(r.err, /^ct-analyze: .*v3\.mpk.*upgrade/);
  t.notMatch(r.err, STACK);
});

t.test('cli: --version and --help exit 0', async (t) => {
  const v = run('--version');
  t.equal(v.code, 0);
  t.equal(v.out, `${TOOL_VERSION}\n`);
  const h = run('--help');
  t.equal(h.code, 0);
  t.match(
    h.out,
    /Usage: ct-analyze \[options\] <journal\.\.\.>\n {7}ct-analyze verify \[options\] <journal\.\.\.>/,
  );
  t.match(h.out, /Commands:\n {2}verify \[options\] <journal\.\.\.>/);
  t.match(h.out, /Examples:/);
  const vh = run('verify', '--help');
  t.equal(vh.code, 0);
  t.match(vh.out, /Usage: ct-analyze verify \[options\] <journal\.\.\.>/);
  t.match(vh.out, /MODIFIED/);
});

/** The journal with its first events frame removed: every frame still has a good CRC. */
function withoutFirstEvents(name: string): string {
  const bytes = readFileSync(journal);
  const first = 8 + 9 + bytes.readUInt32LE(8);
  const second = first + 9 + bytes.readUInt32LE(first);
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([bytes.subarray(0, first), bytes.subarray(second)]));
  return path;
}

t.test(
  'cli: verify prints one verdict line per journal, in order; exit 0 only if all OK',
  async (t) => {
    const ok = run('verify', journal);
    t.equal(ok.code, 0);
    t.match(
      ok.out,
      new RegExp(
        `^${journal}: OK — complete, format 2, ${SEED_EVENTS.length} events, 0 gaps, 4 frames; sha256 [0-9a-f]{64}\n$`,
      ),
    );
    t.equal(ok.err, '');
    const torn = join(dir, 'verify-torn.mpk');
    writeJournal(torn, [SEED_EVENTS.slice(0, 4), SEED_EVENTS.slice(4)], false);
    truncateSync(torn, statSync(torn).size - 5);
    const modified = withoutFirstEvents('verify-modified.mpk');
    const missing = join(dir, 'verify-nope.mpk');
    const r = run('verify', journal, torn, modified, missing);
    t.equal(r.code, 1);
    const lines = r.out.split('\n');
    t.equal(lines.length, 5, 'four lines and the final newline');
    t.match(lines[0], `${journal}: OK — `);
    t.match(
      lines[1],
      new RegExp(
        `^${torn}: INCOMPLETE — no trailer, format 2, no checkpoint: 4 events read, none vouched for by a digest; \\d+ trailing bytes ignored$`,
      ),
    );
    t.match(
      lines[2],
      new RegExp(
        `^${modified}: MODIFIED — digest mismatch at the trailer \\(frame at byte \\d+\\)$`,
      ),
    );
    t.match(lines[3], new RegExp(`^${missing}: UNREADABLE — cannot open .*: no such file`));
    t.notMatch(r.err, STACK);
    const json = run('verify', '--format', 'json', journal, modified);
    t.equal(json.code, 1);
    const doc = JSON.parse(json.out);
    t.same(
      doc.map((d: { path: string; verdict: string }) => [d.path, d.verdict]),
      [
        [journal, 'OK'],
        [modified, 'MODIFIED'],
      ],
    );
    t.match(doc[0].sha256, /^[0-9a-f]{64}$/);
    t.equal(doc[1].sha256, null);
  },
);

t.test('cli: verify of a newer format exits 3; no journal at all is a usage error', async (t) => {
  const newer = join(dir, 'verify-v3.mpk');
  const frame = encodeFrame(1, Buffer.from([0x81, 0xa6, ...Buffer.from('format'), 0x03]));
  writeFileSync(newer, Buffer.concat([MAGIC, frame]));
  const r = run('verify', newer);
  t.equal(r.code, 3);
  t.match(
    r.out,
    /verify-v3\.mpk: TOO NEW — was written by format v3; this ct-analyze reads v1 and v2: upgrade conntracker\n$/,
  );
  const both = run('verify', newer, join(dir, 'verify-nope.mpk'));
  t.equal(both.code, 1, 'any other fault outranks TOO NEW');
  const none = run('verify');
  t.equal(none.code, 2);
  t.match(
    none.err,
    /^error: missing required argument 'journal'\n\(run ct-analyze --help for usage\)\n$/,
  );
});

t.test('cli: the report refuses a MODIFIED journal with exit 1, as verify judges it', async (t) => {
  const modified = withoutFirstEvents('report-modified.mpk');
  const r = run(modified);
  t.equal(r.code, 1);
  t.equal(r.out, '', 'no report from frames that cannot be trusted');
  t.match(
    r.err,
    /^ct-analyze: .*report-modified\.mpk was modified after it was recorded: digest mismatch at the trailer \(frame at byte \d+\): .*ct-analyze verify/,
  );
  t.notMatch(r.err, STACK);
});

t.test('cli: a reader that closes the pipe first ends the output, not the program', (t) => {
  // `| true` exits before node has written a byte: every write then fails with EPIPE.
  for (const args of ['--help', 'samples/lan.mpk', 'verify samples/lan.mpk']) {
    const res = spawnSync(
      'bash',
      ['-c', `node ${CLI} ${args} | true; echo "status \${PIPESTATUS[0]}" >&2`],
      { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 30_000 },
    );
    t.equal(res.stderr, 'status 0\n', `ct-analyze ${args} | true: exit 0, nothing on stderr`);
  }
  t.end();
});
