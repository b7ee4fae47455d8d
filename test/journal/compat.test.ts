// Golden journals: the first released v1 files and the first v2 files still verify and analyze to their stored outputs.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { verdictLine, verifyJournal } from '../../analyzer/verify/verify.js';
import { PACKAGE_ROOT } from '../../common/package.js';
import { FrameKind } from '../../journal/format.js';
import { openJournal } from '../../journal/reader.js';
import { readAll } from './fixtures.js';

const DIR = 'test/fixtures/v1';
/** Frame kinds a golden journal holds, so a reader change cannot skip one unnoticed. */
const KINDS: Record<string, number[]> = {
  'lan-0.1.0': [FrameKind.HEADER, FrameKind.EVENTS, FrameKind.TRAILER],
  'nat-router-0.1.0': [FrameKind.HEADER, FrameKind.EVENTS, FrameKind.TRAILER],
  'gaps-checkpoints-0.1.0': [
    FrameKind.HEADER,
    FrameKind.EVENTS,
    FrameKind.TRAILER,
    FrameKind.GAP,
    FrameKind.CHECKPOINT,
  ],
};

/** The kinds of a journal's frames, walked through the envelope alone. */
function kindsOf(bytes: Buffer): Set<number> {
  const kinds = new Set<number>();
  for (let at = 8; at < bytes.length; at += 9 + bytes.readUInt32LE(at)) {
    kinds.add(bytes[at + 8] as number);
  }
  return kinds;
}

/** A 0.1.0 verdict line as verify prints it now: the format after `complete`. */
const withFormat = (line: string) => line.replace(' OK — complete, ', ' OK — complete, format 1, ');

const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/analyzer/cli.js', ...args], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
  });

for (const [name, kinds] of Object.entries(KINDS)) {
  const rel = `${DIR}/${name}.mpk`;
  const path = `${PACKAGE_ROOT}/${rel}`;
  const stored = (ext: string) => readFileSync(`${PACKAGE_ROOT}/${DIR}/${name}.${ext}`, 'utf8');

  t.test(`compat: ${rel} verifies OK with its stored verdict line and sha256`, (t) => {
    const bytes = readFileSync(path);
    t.same([...kindsOf(bytes)].sort(), [...kinds].sort(), 'the frame kinds it is kept for');
    const r = verifyJournal(rel);
    t.equal(r.verdict, 'OK');
    t.equal(r.format, 1);
    // The verdict line 0.1.0 printed, plus the format (named since format 2 exists).
    t.equal(`${verdictLine(r)}\n`, withFormat(stored('verify.txt')));
    t.equal(
      r.sha256,
      createHash('sha256').update(bytes).digest('hex'),
      'the sha256sum of the file',
    );
    const { reader, events } = readAll(path);
    t.equal(reader.trailer?.events, events.length);
    t.equal(reader.tail, undefined);
    t.end();
  });

  t.test(`compat: ${rel} analyzes to exactly ${name}.txt and ${name}.json`, (t) => {
    const text = cli(rel);
    t.equal(text.status, 0, text.stderr);
    // The flow lines are the interface (grep -v '^#' gives the seed's output): byte for byte.
    // The # block grows: what 0.1.0 printed stays, the first line gained the kernel (0.2.0).
    const flowLines = (s: string) => s.split('\n').filter((l) => !l.startsWith('#'));
    const block = (s: string) => s.split('\n').filter((l) => l.startsWith('#'));
    t.strictSame(flowLines(text.stdout), flowLines(stored('txt')), 'the flow lines, exactly');
    const [first, ...rest] = block(stored('txt'));
    const now = block(text.stdout);
    t.equal(now[0]?.replace(/, kernel [^,]*,/, ','), first, 'the first line, plus the kernel');
    for (const line of rest) t.ok(now.includes(line), `still there: ${line}`);
    const json = cli('--format', 'json', rel);
    t.equal(json.status, 0, json.stderr);
    // Schema version 1 grows by added fields only: what 0.1.0 wrote must be there unchanged.
    // Added since (0.2.0): flows[].hosts, the journal header's host name for one journal;
    // flows[].nat on translated flows; flows[].direction where the header has addresses;
    // flows[].firstSeen and lastSeen.
    const doc = JSON.parse(json.stdout);
    const old = JSON.parse(stored('json'));
    t.strictSame(
      doc.flows.map((f: { hosts: unknown }) => f.hosts),
      old.flows.map(() => [old.journals[0].host]),
      'each flow names the recording host',
    );
    const translated = doc.flows.filter((f: { nat?: unknown }) => f.nat !== undefined).length;
    if (name.startsWith('nat-router')) t.ok(translated > 0, `NAT shown on ${translated} flows`);
    for (const f of doc.flows) {
      t.ok(f.firstSeen <= f.lastSeen, 'first seen before last');
      for (const added of ['hosts', 'nat', 'firstSeen', 'lastSeen']) delete f[added];
    }
    // Added to journals[].coverage since (0.2.0): the sysctls, filters and import source; and
    // warnings grew new kinds (a short recording, timestamps off): 0.1.0's must still be there.
    for (const [j, was] of (doc.journals as { coverage: Record<string, unknown> }[]).map(
      (j, i) => [j, old.journals[i]] as const,
    )) {
      for (const added of ['nfConntrackTimestamp', 'nfConntrackAcct', 'filters', 'importedFrom']) {
        delete j.coverage[added];
      }
      const warnings = j.coverage.warnings as string[];
      for (const w of was.coverage.warnings) t.ok(warnings.includes(w), `still warned: ${w}`);
      j.coverage.warnings = was.coverage.warnings;
    }
    t.strictSame(doc, old, 'every field 0.1.0 wrote, unchanged');
    const verify = cli('verify', rel);
    t.equal(verify.status, 0);
    t.equal(verify.stdout, withFormat(stored('verify.txt')));
    t.end();
  });
}

const V2 = 'test/fixtures/v2';
/** The first format 2 journals (test/fixtures/v2/README.md), and the frame kinds each holds. */
const KINDS_V2: Record<string, number[]> = {
  lan: [FrameKind.HEADER, FrameKind.EVENTS, FrameKind.CHECKPOINT, FrameKind.TRAILER],
  'nat-router': [FrameKind.HEADER, FrameKind.EVENTS, FrameKind.CHECKPOINT, FrameKind.TRAILER],
  'gaps-checkpoints': KINDS['gaps-checkpoints-0.1.0'] as number[],
};

for (const [name, kinds] of Object.entries(KINDS_V2)) {
  const rel = `${V2}/${name}.mpk`;
  const path = `${PACKAGE_ROOT}/${rel}`;
  const stored = (ext: string) => readFileSync(`${PACKAGE_ROOT}/${V2}/${name}.${ext}`, 'utf8');

  t.test(`compat: ${rel} is format 2 and verifies OK with its stored verdict line`, (t) => {
    const bytes = readFileSync(path);
    t.same([...kindsOf(bytes)].sort(), [...kinds].sort(), 'the frame kinds it is kept for');
    const r = verifyJournal(rel);
    t.equal(r.verdict, 'OK');
    t.equal(r.format, 2);
    t.equal(`${verdictLine(r)}\n`, stored('verify.txt'));
    t.equal(r.sha256, createHash('sha256').update(bytes).digest('hex'), 'the sha256sum');
    const { reader, events } = readAll(path);
    t.equal(reader.header.format, 2);
    t.equal(reader.trailer?.events, events.length);
    t.equal(reader.tail, undefined);
    t.end();
  });

  t.test(`compat: ${rel} analyzes to exactly ${name}.txt and ${name}.json`, (t) => {
    // Written by the version that introduced format 2: its outputs are today's, exactly. A
    // later report that adds a line or a field says so here, as the v1 test does.
    const text = cli(rel);
    t.equal(text.status, 0, text.stderr);
    t.equal(text.stdout, stored('txt'));
    const json = cli('--format', 'json', rel);
    t.equal(json.status, 0, json.stderr);
    t.strictSame(JSON.parse(json.stdout), JSON.parse(stored('json')));
    const verify = cli('verify', rel);
    t.equal(verify.status, 0);
    t.equal(verify.stdout, stored('verify.txt'));
    t.end();
  });
}

t.test(
  'compat: the v2 gaps-checkpoints journal holds the v1 one’s items and analyzes alike',
  (t) => {
    const items = (rel: string) => {
      const reader = openJournal(`${PACKAGE_ROOT}/${rel}`);
      try {
        return [...reader.items()].map((i) => (i.kind === 'gap' ? i.gap : i.events));
      } finally {
        reader.close();
      }
    };
    const v1 = `${DIR}/gaps-checkpoints-0.1.0.mpk`;
    const v2 = `${V2}/gaps-checkpoints.mpk`;
    t.same(items(v2), items(v1), 'the same events and gaps, frame by frame');
    const flows = (rel: string) =>
      cli(rel)
        .stdout.split('\n')
        .filter((l) => !l.startsWith('#'));
    t.strictSame(flows(v2), flows(v1), 'the same flow lines');
    t.end();
  },
);
