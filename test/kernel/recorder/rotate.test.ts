// ct-record --rotate and --max-size on the real kernel: chained journals that lose no flow at a boundary.
import '../../helpers/kernel.js';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { openJournal } from '../../../journal/reader.js';
import { ANALYZER, RECORDER, startRecorder } from '../../../samples/record.js';
import { expectedLines, runScenario, stripCounter } from '../../../samples/scenario.js';
import { defaultAccount } from '../../helpers/account.js';
import { buildFlood, flood } from '../../helpers/flood.js';
import { createTopology, exitedWithin, run } from '../../helpers/netns.js';

for (const cli of [RECORDER, ANALYZER]) {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
}

const FLOW_LINE = /^(ICMP| TCP| UDP)v[46] \[ *\d+\] /;
/** ct-record's default --user: journals after the first are created as it. */
const ACCOUNT = defaultAccount();

const dir = mkdtempSync(join(tmpdir(), `ct-rotate-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
// As a deployment would (install -d -o conntracker): the recorder writes here after its drop.
chownSync(dir, ACCOUNT.uid, ACCOUNT.gid);

const cli = (tool: string, args: readonly string[]) =>
  run([process.execPath, tool, ...args], { check: false, timeoutMs: 60_000 });

/** The numbered journals of the run written with `-o dir/name.mpk`, in order. */
function runFiles(name: string): string[] {
  return readdirSync(dir)
    .filter((f) => new RegExp(`^${name}-\\d{6}\\.mpk$`).test(f))
    .sort()
    .map((f) => join(dir, f));
}

async function flowLines(paths: readonly string[]): Promise<string[]> {
  const r = await cli(ANALYZER, paths);
  if (r.code !== 0) throw new Error(`ct-analyze ${paths.join(' ')}: exit ${r.code}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => FLOW_LINE.test(l))
    .map(stripCounter);
}

/** NEW events over the journals, from the JSON report's coverage. */
async function newEvents(paths: readonly string[]): Promise<number> {
  const r = await cli(ANALYZER, ['--format', 'json', ...paths]);
  const doc = JSON.parse(r.stdout) as { journals: { coverage: { byType: { new: number } } }[] };
  return doc.journals.reduce((n, j) => n + j.coverage.byType.new, 0);
}

t.test(
  'rotate: runs split by size and by time hold exactly the flows of one plain recording, verify whole, and a missing middle journal is found',
  async (t) => {
    const topo = await createTopology(t, 'lan');
    const floodBin = buildFlood(dir);
    // Four recorders of the same namespace at once: each socket gets every event.
    const plain = await startRecorder(topo, join(dir, 'plain.mpk'));
    // Format 1 here: the flood's frames fill 8K more surely uncompressed. The time-rotated
    // run is format 2 (the default): each run keeps its format in every journal.
    const bySize = await startRecorder(topo, join(dir, 'size.mpk'), [
      '--rotate',
      '--max-size',
      '8K',
      '--format-version',
      '1',
    ]);
    const byTime = await startRecorder(topo, join(dir, 'time.mpk'), [
      '--rotate',
      '--duration',
      '1',
    ]);
    const capped = await startRecorder(topo, join(dir, 'capped.mpk'), ['--max-size', '8K']);

    const { flows } = await runScenario(topo);
    // ct-record holds events up to 4,096 (or the flush interval) per frame, and --max-size is
    // checked after each frame: 12,000 flows are at least three frames of 8K and more, so at
    // least three journals, whatever the native batches (at most 5,119 events per frame).
    const sent = await flood(topo, floodBin, 12_000);
    t.equal(sent, 12_000, 'the flood sent every datagram');
    // Spread over more than two seconds, so the time-rotated run has at least three journals.
    for (let i = 0; i < 6; i++) {
      await topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '1', topo.server.v4]);
      await sleep(400);
    }
    t.equal(
      await exitedWithin(capped.child, 10_000),
      0,
      `--max-size without --rotate stops by itself\n${capped.stderr()}`,
    );
    for (const rec of [plain, bySize, byTime]) rec.child.kill('SIGTERM');
    for (const rec of [plain, bySize, byTime]) {
      t.equal(await exitedWithin(rec.child, 20_000), 0, `ct-record exits 0\n${rec.stderr()}`);
    }

    const capSize = statSync(join(dir, 'capped.mpk')).size;
    t.ok(capSize >= 8192, `the capped journal reached --max-size (${capSize} bytes)`);
    t.match((await cli(ANALYZER, ['verify', join(dir, 'capped.mpk')])).stdout, /: OK — complete/);

    const size = runFiles('size');
    const time = runFiles('time');
    t.ok(size.length >= 3, `--max-size 8K rotated: ${size.length} journals`);
    t.ok(time.length >= 3, `--duration 1 rotated: ${time.length} journals`);
    t.match(
      bySize.stderr(),
      new RegExp(
        `journal ${size[0]} complete: \\d+ events, \\d+ bytes, sha256 [0-9a-f]{64}; now writing ${size[1]}`,
      ),
      'ct-record logs each rotation',
    );
    t.match(bySize.stderr(), `bytes written to ${size.length} journals, the last ${size.at(-1)}`);
    for (const [journals, format] of [
      [size, 1],
      [time, 2],
    ] as const) {
      for (const [i, path] of journals.entries()) {
        t.ok(statSync(path).size > 0);
        if (i > 0)
          t.equal(statSync(path).uid, ACCOUNT.uid, `${basename(path)} created after the drop`);
      }
      const v = await cli(ANALYZER, ['verify', ...journals]);
      t.equal(v.code, 0, `every journal verifies and the chain is complete\n${v.stdout}`);
      const lines = v.stdout.trimEnd().split('\n');
      t.equal(lines.length, journals.length + 1);
      t.ok(lines.slice(0, -1).every((l) => / OK — complete, /.test(l)));
      t.ok(
        lines.slice(0, -1).every((l) => l.includes(` OK — complete, format ${format}, `)),
        `every journal of the run is format ${format}`,
      );
      t.match(
        lines.at(-1),
        new RegExp(`^chain [0-9a-f]{8}: ${journals.length} journals, complete$`),
      );
    }

    // Each journal describes itself: the full header, addresses and the run it belongs to.
    const heads = size.map((p) => {
      const r = openJournal(p);
      r.close();
      return r.header;
    });
    const run = Buffer.from(heads[0]?.chain?.run ?? []).toString('hex');
    for (const [i, h] of heads.entries()) {
      t.equal(Buffer.from(h.chain?.run ?? []).toString('hex'), run, `journal ${i + 1}: same run`);
      t.equal(h.chain?.sequence, i + 1);
      t.equal(h.chain?.previous?.file ?? null, i === 0 ? null : basename(size[i - 1] as string));
      t.ok((h.addresses?.length ?? 0) > 0, `journal ${i + 1} records the host's addresses`);
      t.equal(h.sysctls.nf_conntrack_events, heads[0]?.sysctls.nf_conntrack_events);
      t.equal(h.options.rotate, true);
    }

    const want = await flowLines([join(dir, 'plain.mpk')]);
    t.ok(
      expectedLines(flows).every((l) => want.includes(l)),
      'the plain recording holds the scenario',
    );
    t.ok(want.length >= 12_000, `and the flood (${want.length} flows)`);
    t.strictSame(await flowLines(size), want, 'the size-rotated run: the same flows, none lost');
    t.strictSame(await flowLines(time), want, 'the time-rotated run: the same flows, none lost');
    const plainNew = await newEvents([join(dir, 'plain.mpk')]);
    t.equal(await newEvents(size), plainNew, 'and the same NEW events');
    t.equal(await newEvents(time), plainNew);

    const middle = size[1] as string;
    renameSync(middle, join(dir, 'moved-away'));
    const broken = await cli(ANALYZER, ['verify', ...runFiles('size')]);
    t.equal(broken.code, 1, 'a missing middle journal fails verify');
    t.match(
      broken.stdout,
      new RegExp(
        `\\nchain ${run.slice(0, 8)}: ${size.length - 1} journals, BROKEN — ${middle} is missing: sequence 2 of run ${run.slice(0, 8)}\\n$`,
      ),
    );
    const partial = await cli(ANALYZER, runFiles('size'));
    t.equal(partial.code, 0);
    t.match(
      partial.stderr,
      `journal 3 of run ${run.slice(0, 8)} is analyzed without journal 2 (${basename(middle)})`,
    );
  },
);

t.test('rotate: bad option combinations are usage errors that record nothing', async (t) => {
  const out = join(dir, 'usage.mpk');
  const alone = await cli(RECORDER, ['-o', out, '--rotate']);
  t.equal(alone.code, 2);
  t.match(alone.stderr, /--rotate needs --duration or --max-size: they say when each journal ends/);
  const tiny = await cli(RECORDER, ['-o', out, '--max-size', '1K']);
  t.equal(tiny.code, 2);
  t.match(tiny.stderr, /--max-size.*give at least 4K/);
  t.strictSame(
    readdirSync(dir).filter((f) => f.startsWith('usage')),
    [],
  );
});

t.test('rotate: journals are never overwritten, before the run or at a rotation', async (t) => {
  const topo = await createTopology(t, 'lan');
  const inNs = (args: readonly string[]) =>
    topo.exec(topo.recordNs, [process.execPath, RECORDER, ...args], {
      check: false,
      timeoutMs: 20_000,
    });

  const earlier = join(dir, 'earlier-000003.mpk');
  writeFileSync(earlier, 'an earlier run');
  const refused = await inNs(['-o', join(dir, 'earlier.mpk'), '--rotate', '--duration', '5']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, `${earlier} exists from an earlier run: move it away`);
  t.notOk(existsSync(join(dir, 'earlier-000001.mpk')), 'nothing was written');
  t.equal(readFileSync(earlier, 'utf8'), 'an earlier run');

  const closed = join(dir, 'closed');
  mkdirSync(closed, { mode: 0o755 });
  const unwritable = await inNs(['-o', join(closed, 'u.mpk'), '--rotate', '--max-size', '8K']);
  t.equal(unwritable.code, 1, 'a directory --user cannot write is refused at the start');
  t.match(unwritable.stderr, `user conntracker (--user), who cannot write to ${closed}`);
  t.strictSame(readdirSync(closed), []);

  // The next name is taken while the run goes on: it ends there, its journal complete.
  const clash = await startRecorder(topo, join(dir, 'clash.mpk'), ['--rotate', '--max-size', '4K']);
  const taken = join(dir, 'clash-000002.mpk');
  writeFileSync(taken, 'not a journal of this run');
  // Until it rotates: a few events a second, held, reach 4K only after a few flush intervals.
  for (const until = Date.now() + 30_000; clash.child.exitCode === null && Date.now() < until; ) {
    await topo.exec(topo.client.ns, ['ping', '-c', '1', '-W', '1', topo.server.v4]);
  }
  t.equal(await exitedWithin(clash.child, 10_000), 1, clash.stderr());
  t.match(clash.stderr(), `cannot rotate to ${taken}: it exists; the run ended with`);
  t.equal(readFileSync(taken, 'utf8'), 'not a journal of this run', 'the taken file is untouched');
  const v = await cli(ANALYZER, ['verify', join(dir, 'clash-000001.mpk')]);
  t.match(v.stdout, /clash-000001\.mpk: OK — complete/, 'the last journal ended with its trailer');
  t.match(v.stdout, /chain [0-9a-f]{8}: 1 journal, complete\n$/, 'naming no next');
});
