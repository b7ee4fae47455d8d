// Resync after a real overrun: paced dumps, known entries left out, the same flows as full dumps, and a stop during the wait.
import '../../helpers/kernel.js';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { FlowTable } from '../../../analyzer/core/flows.js';
import type { CtEvent } from '../../../journal/event.js';
import { RECORDER, type RunningRecorder, startRecorder } from '../../../samples/record.js';
import { ensureDefaultUser } from '../../helpers/account.js';
import { buildFlood, flood } from '../../helpers/flood.js';
import { readWhole } from '../../helpers/journals.js';
import { createTopology, exitedWithin } from '../../helpers/netns.js';

// ct-record as root drops to its default account (conntracker): this machine must have it.
ensureDefaultUser();
if (!existsSync(RECORDER)) throw new Error(`${RECORDER} is missing: run \`npm run build\` first`);

const dir = mkdtempSync(join(tmpdir(), `ct-resync-${process.pid}-`));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

async function stopRecorder(rec: RunningRecorder): Promise<number | string> {
  rec.child.kill('SIGTERM');
  return exitedWithin(rec.child, 30_000);
}

/** Resolves once none of `paths` has grown for `quietMs`. */
async function settled(paths: readonly string[], quietMs: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  const size = () => paths.map((p) => statSync(p).size).join(' ');
  let last = size();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    if (Date.now() > end) throw new Error(`journals still grow after ${maxMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
    const now = size();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** A journal's flows by key and confirmation: what the resyncs must leave the same. */
function flowsOf(events: readonly CtEvent[]): string[] {
  const table = new FlowTable();
  table.addAll(events);
  return [...table.flows()].map(
    (f) => `${f.table} ${f.src} ${f.dst} ${f.sport} ${f.dport} ${f.confirmed} ${f.assured}`,
  );
}

const SUMMARY = /(\d+) resync table dumps; (\d+) dump entries the journal already held/;

t.test(
  'resync: after a real overrun, skipping known entries gives the flows of full dumps; stopped during a 30 s wait, the stop dumps and no flow is missing',
  async (t) => {
    const floodBin = buildFlood(dir);
    const topo = await createTopology(t, 'lan');
    // Every flood flow stays in the table until the end, so every dump has work to do.
    await topo.exec(topo.recordNs, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=300']);
    const tiny = ['-e', 'NEW', '-b', '4K'];
    const skip = join(dir, 'skip.mpk');
    const full = join(dir, 'full.mpk');
    const slow = join(dir, 'slow.mpk');
    const recSkip = await startRecorder(topo, skip, [...tiny, '--resync-interval', '1']);
    const recFull = await startRecorder(topo, full, [
      ...tiny,
      '--resync-interval',
      '1',
      '--resync-full',
    ]);
    const recSlow = await startRecorder(topo, slow, tiny);

    const n = 8_000;
    t.equal(await flood(topo, floodBin, n), n, `the flood sent ${n} datagrams`);
    // Quiet for longer than the 1 s interval: the paced recorders' last dumps are done.
    await settled([skip, full, slow], 3_000, 40_000);
    for (const rec of [recSkip, recFull, recSlow]) {
      t.equal(await stopRecorder(rec), 0, `SIGTERM: exit 0\n${rec.stderr()}`);
    }

    const a = readWhole(skip);
    const b = readWhole(full);
    const c = readWhole(slow);
    for (const [name, j] of [
      ['skip', a],
      ['full', b],
      ['slow', c],
    ] as const) {
      t.ok(j.complete, `${name}: the journal is complete`);
      t.ok(j.gaps.length >= 1, `${name}: the overrun left ${j.gaps.length} gap(s)`);
    }
    for (const g of [...a.gaps, ...b.gaps]) {
      t.ok(g.resync >= 0, `a 1 s interval: every gap was resynchronised (${g.resync} entries)`);
    }
    const flows = flowsOf(a.events);
    t.ok(flows.length >= n, `${flows.length} flows recorded with known entries left out`);
    t.same(flows, flowsOf(b.events), 'the same flows, the same confirmation, as full dumps');

    const skipLine = SUMMARY.exec(recSkip.stderr());
    const fullLine = SUMMARY.exec(recFull.stderr());
    t.ok(skipLine && fullLine, `both summaries count their resyncs\n${recSkip.stderr()}`);
    const snapshots = (j: typeof a) => j.events.filter((e) => e.type === 4).length;
    t.equal(Number(fullLine?.[2]), 0, '--resync-full leaves nothing out');
    t.ok(
      Number(skipLine?.[1]) === 0 || Number(skipLine?.[2]) > 0,
      `entries held already were left out (${skipLine?.[2]} in ${skipLine?.[1]} dumps)`,
    );
    t.comment(
      `snapshot entries written: ${snapshots(a)} (skip, ${skipLine?.[1]} dumps) vs ${snapshots(b)} (full, ${fullLine?.[1]} dumps)`,
    );

    // The default 30 s interval over a run far shorter than that: the first loss dumps, every
    // later one waits for the interval, and the stop (during the wait) makes that dump first.
    const slowLine = SUMMARY.exec(recSlow.stderr());
    t.equal(
      Number(slowLine?.[1]),
      2,
      `one resync dump at the first loss, one at the stop\n${recSlow.stderr()}`,
    );
    t.match(
      recSlow.stderr(),
      /stopping: a table dump first, to resynchronise the \d+ events lost since the last one/,
      'the stop said why it waited',
    );
    t.ok(
      c.gaps.every((g) => g.resync >= 0),
      `every gap has its dump, the stop's included (${c.gaps.map((g) => g.resync).join(', ')})`,
    );
    t.ok(
      c.gaps.every((g) => g.skipped !== undefined && g.skipped <= g.resync),
      'each gap says how many of its dump entries were left out as held already',
    );
    t.same(flowsOf(c.events), flowsOf(b.events), 'stopped during the wait: no flow is missing');
    const lost = (j: typeof a) => j.gaps.reduce((s, g) => s + g.lost, 0);
    t.ok(lost(c) > 0, `every lost event is still counted (${lost(c)})`);
  },
);
