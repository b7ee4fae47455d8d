// Journals from strangers: forged and random input ends with the documented verdict, in bounded time and memory.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PACKAGE_ROOT } from '../../common/package.js';
import { FRAME_HEADER_SIZE, FrameKind, MAGIC, packr } from '../../journal/format.js';
import { encodeFrame } from '../../journal/frame.js';
import { HEADER } from '../helpers/journals.js';
import { tempDir, writeJournal } from './fixtures.js';

const dir = tempDir(t, 'untrusted');
const STACK = /\n\s+at /;

/** A real journal's magic and header frame: the start every forged file below shares. */
const head = (() => {
  const path = join(dir, 'head.mpk');
  // Format 1: the hostile events frames below are format 1 payloads (events-v2 tests bound v2's).
  writeJournal(path, [], false, 1);
  const bytes = readFileSync(path);
  return bytes.subarray(0, MAGIC.length + FRAME_HEADER_SIZE + bytes.readUInt32LE(MAGIC.length));
})();

/**
 * Runs `verify` or `analyze` on `path` in a fresh node (the built dist/, as users run it) and
 * returns the outcome (a verdict, or ok / the error code), the time taken and the child's peak
 * RSS (VmHWM: getrusage's maxrss also counts the parent's pages from before exec).
 */
function probe(path: string, what: 'verify' | 'analyze') {
  const script = `
    const { readFileSync } = await import('node:fs');
    const { verifyJournal } = await import('./dist/analyzer/verify/verify.js');
    const { analyzeJournals } = await import('./dist/analyzer/core/replay.js');
    const path = process.argv[1];
    const began = performance.now();
    let outcome = 'ok';
    let detail = '';
    if (process.argv[2] === 'verify') {
      const v = verifyJournal(path);
      outcome = v.verdict;
      detail = v.detail;
    } else {
      try { analyzeJournals([path]); } catch (err) { outcome = err.code ?? String(err); }
    }
    const ms = performance.now() - began;
    const kB = readFileSync('/proc/self/status', 'utf8').split('VmHWM:')[1].trim().split(' ')[0];
    console.log(JSON.stringify({ outcome, detail, ms, rssMB: Number(kB) / 1024 }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, path, what], {
    cwd: PACKAGE_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`probe failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as { outcome: string; detail: string; ms: number; rssMB: number };
}

/** ct-analyze verify and ct-analyze on the file: exit codes and no stack trace. */
function cli(path: string) {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['dist/analyzer/cli.js', ...args], {
      cwd: PACKAGE_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
  return { verify: run('verify', path), analyze: run(path) };
}

/**
 * Peak RSS above that of the same probe on a tiny valid journal, measured in the same run (a
 * bare node importing dist/ peaks at 60–80 MB, more under load). The reader may add a 16 MiB
 * frame, its read chunk and the forward scan's buffers: at most 63 MB measured, so the bound
 * is twice that. Reading the 256 MiB file below whole would go past it.
 */
const EXTRA_RSS_MB = 130;
const baseline = (() => {
  const path = join(dir, 'baseline.mpk');
  writeJournal(path, [], true);
  return probe(path, 'analyze').rssMB;
})();

const cases: Array<{
  name: string;
  bytes: () => Buffer;
  verdict: string;
  detail: RegExp;
  analyze: string;
  ms: number;
}> = [
  {
    name: '50 MB of random bytes',
    bytes: () => randomBytes(50 << 20),
    verdict: 'UNREADABLE',
    detail: /^is not a conntracker journal \(bad magic\)/,
    analyze: 'ENOTJOURNAL',
    ms: 2_000,
  },
  {
    name: 'a real header then 256 MB of random bytes',
    bytes: () => Buffer.concat([head, randomBytes(256 << 20)]),
    verdict: 'INCOMPLETE',
    detail:
      /^no trailer, format 1, no checkpoint: 0 events read, none vouched for by a digest; 268435456 trailing bytes ignored$/,
    analyze: 'ok',
    ms: 20_000,
  },
  {
    name: '1M tiny frames of unknown kind 6 with good CRCs',
    bytes: () => Buffer.concat([head, ...Array(1_000_000).fill(encodeFrame(6, Buffer.of(0x90)))]),
    verdict: 'CORRUPT',
    detail: new RegExp(
      `^frame at byte ${head.length}: a frame of kind 6 has no place in a v1 journal`,
    ),
    analyze: 'ECORRUPT',
    ms: 2_000,
  },
  {
    name: '1M tiny empty events frames with good CRCs',
    bytes: () => Buffer.concat([head, ...Array(1_000_000).fill(encodeFrame(2, Buffer.of(0x90)))]),
    verdict: 'INCOMPLETE',
    detail: /^no trailer, format 1, no checkpoint: 0 events read, none vouched for by a digest$/,
    analyze: 'ok',
    ms: 20_000,
  },
  {
    name: 'a frame claiming 4 GB, then 1 MB',
    bytes: () => {
      const frame = Buffer.alloc(FRAME_HEADER_SIZE);
      frame.writeUInt32LE(0xffffffff, 0);
      frame[8] = FrameKind.EVENTS;
      return Buffer.concat([head, frame, randomBytes(1 << 20)]);
    },
    verdict: 'INCOMPLETE',
    detail: /; 1048585 trailing bytes ignored$/,
    analyze: 'ok',
    ms: 5_000,
  },
  {
    name: 'a frame claiming 4 GB followed by a valid frame',
    bytes: () => {
      const frame = Buffer.alloc(FRAME_HEADER_SIZE);
      frame.writeUInt32LE(0xffffffff, 0);
      frame[8] = FrameKind.EVENTS;
      return Buffer.concat([head, frame, encodeFrame(FrameKind.EVENTS, packr.pack([]))]);
    },
    verdict: 'CORRUPT',
    detail: new RegExp(
      `^frame at byte ${head.length}: frame length 4294967295 > max, yet a valid frame follows at byte ${head.length + FRAME_HEADER_SIZE}$`,
    ),
    analyze: 'ECORRUPT',
    ms: 2_000,
  },
  {
    name: 'an events payload nested 100k arrays deep',
    bytes: () => {
      const deep = Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.of(0x90)]);
      return Buffer.concat([head, encodeFrame(FrameKind.EVENTS, deep)]);
    },
    verdict: 'CORRUPT',
    detail:
      /^frame at byte \d+: events payload is not valid msgpack \(Maximum call stack size exceeded\)$/,
    analyze: 'ECORRUPT',
    ms: 2_000,
  },
  {
    name: 'a gap map nested 100k maps deep',
    bytes: () => {
      const deep = Buffer.concat([Buffer.from('81a161'.repeat(100_000), 'hex'), Buffer.of(0xc0)]);
      return Buffer.concat([head, encodeFrame(FrameKind.GAP, deep)]);
    },
    verdict: 'CORRUPT',
    detail: /^frame at byte \d+: gap is not valid msgpack \(Maximum call stack size exceeded\)$/,
    analyze: 'ECORRUPT',
    ms: 2_000,
  },
  {
    name: 'a header whose options nest 100k maps deep',
    bytes: () => {
      const valid = packr.pack({ ...HEADER, format: 1, options: {}, eventFields: [] });
      // Forged by hand: options → {a: {a: … nil}} instead of {}.
      const i = valid.indexOf(Buffer.from('a76f7074696f6e7380', 'hex'));
      const deep = Buffer.concat([Buffer.from('81a161'.repeat(100_000), 'hex'), Buffer.of(0xc0)]);
      const payload = Buffer.concat([valid.subarray(0, i + 8), deep, valid.subarray(i + 9)]);
      return Buffer.concat([MAGIC, encodeFrame(FrameKind.HEADER, payload)]);
    },
    verdict: 'CORRUPT',
    detail: /^header is not valid msgpack \(Maximum call stack size exceeded\)|^frame at byte 8: /,
    analyze: 'ECORRUPT',
    ms: 2_000,
  },
];

for (const c of cases) {
  t.test(`untrusted: ${c.name} is ${c.verdict}, in bounded time and memory, no stack`, (t) => {
    const path = join(dir, `${c.name.replace(/\W+/g, '-')}.mpk`);
    writeFileSync(path, c.bytes());
    const v = probe(path, 'verify');
    t.equal(v.outcome, c.verdict, v.detail);
    t.match(v.detail, c.detail);
    const a = probe(path, 'analyze');
    t.equal(a.outcome, c.analyze, 'ct-analyze agrees with verify');
    for (const [what, p] of [
      ['verify', v],
      ['analyze', a],
    ] as const) {
      t.ok(p.ms < c.ms, `${what} took ${p.ms.toFixed(0)} ms (bound ${c.ms})`);
      const extra = p.rssMB - baseline;
      t.ok(
        extra < EXTRA_RSS_MB,
        `${what}: peak RSS ${p.rssMB.toFixed(0)} MB, ${extra.toFixed(0)} MB above a tiny journal's (bound ${EXTRA_RSS_MB})`,
      );
    }
    const { verify, analyze } = cli(path);
    t.equal(verify.status, 1, 'verify exits 1');
    t.equal(verify.stdout.split('\n').length, 2, 'one verdict line');
    t.equal(analyze.status, c.analyze === 'ok' ? 0 : 1, 'ct-analyze exit');
    t.notMatch(verify.stderr + analyze.stderr, STACK);
    t.end();
  });
}
