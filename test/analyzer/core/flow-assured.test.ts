// A flow's `assured` (some event carried IPS_ASSURED, an OR like `confirmed`) on every path, and in no report.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import t from 'tap';
import { FlowTable } from '../../../analyzer/core/flows.js';
import { analyzeJournals, minBytesInWorker } from '../../../analyzer/core/replay.js';
import { htmlChunks } from '../../../analyzer/report/html.js';
import { flowJson, jsonChunks, tableReport } from '../../../analyzer/report/json.js';
import { csvChunks, mdChunks } from '../../../analyzer/report/table.js';
import { textChunks } from '../../../analyzer/report/text.js';
import { PACKAGE_ROOT } from '../../../common/package.js';
import { type CtEvent, Status } from '../../../journal/event.js';
import { EventColumns } from '../../../journal/event-columns.js';
import { JournalWriter } from '../../../journal/writer.js';
import { HEADER, tempDir } from '../../helpers/journals.js';

const dir = tempDir(t, 'flow-assured');

const { SEEN_REPLY, ASSURED, CONFIRMED } = Status;

/** An event of TCP flow `flow` (10.0.0.1 → 10.0.1.flow:443) at `time` with conntrack `status`. */
function ev(flow: number, time: number, status: number): CtEvent {
  const src = Uint8Array.of(10, 0, 0, 1);
  const dst = Uint8Array.of(10, 0, 1, flow);
  return {
    type: 2,
    family: 4,
    proto: 6,
    status,
    id: flow + 1,
    time: HEADER.start + time,
    timeKernel: false,
    orig: { src, dst, sport: 40000, dport: 443, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: { src: dst, dst: src, sport: 443, dport: 40000, icmpType: 0, icmpCode: 0, icmpId: 0 },
    tcpState: 3,
  };
}

/**
 * Flow 0: a handshake (NEW, SYN-ACK seen, ASSURED) then its DESTROY without ASSURED's bit (the
 * kernel keeps it; an import or a hand-made journal need not); flow 1: SYN answered by RST
 * (replied, never assured); flow 2: unanswered; flow 3: ASSURED without SEEN_REPLY (any u32).
 */
const EVENTS: CtEvent[] = [
  ev(0, 10, CONFIRMED),
  ev(0, 20, CONFIRMED | SEEN_REPLY),
  ev(0, 30, CONFIRMED | SEEN_REPLY | ASSURED),
  ev(0, 40, CONFIRMED | SEEN_REPLY),
  ev(1, 10, CONFIRMED),
  ev(1, 20, CONFIRMED | SEEN_REPLY),
  ev(2, 10, CONFIRMED),
  ev(3, 10, ASSURED),
];
const WANT = [
  [true, true],
  [true, false],
  [false, false],
  [false, true],
];

const factsOf = (table: FlowTable) => [...table.flows()].map((f) => [f.confirmed, f.assured]);

t.test('flows: assured is an OR over events, independent of confirmed', (t) => {
  const table = new FlowTable();
  table.addAll(EVENTS);
  t.same(factsOf(table), WANT, '[confirmed, assured] per flow');
  t.end();
});

t.test(
  'flows: assured does not depend on event order, duplication, batch split or path (objects, columns)',
  (t) => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray([...EVENTS, ...EVENTS], { minLength: EVENTS.length }),
        fc.integer({ min: 1, max: EVENTS.length }),
        (picked, size) => {
          // Every event at least once: the duplicated list may drop one copy of each.
          const order = [...picked, ...EVENTS.filter((e) => !picked.includes(e))];
          const objects = new FlowTable();
          objects.addAll(order);
          const columns = new FlowTable();
          const c = new EventColumns();
          for (let i = 0; i < order.length; i += size) {
            c.fill(order.slice(i, i + size));
            columns.addColumns(c);
          }
          t.same(factsOf(objects), WANT);
          t.same(factsOf(columns), WANT);
        },
      ),
      { numRuns: 100 },
    );
    t.end();
  },
);

t.test('replay: assured comes through a journal and merges over two hosts’ journals', (t) => {
  // fw1 saw flow 1 only replied; fw2 saw it assured: the merged flow is assured.
  const a = join(dir, 'fw1.mpk');
  const w = JournalWriter.create(a, { ...HEADER, host: 'fw1' });
  w.append(EVENTS);
  w.close({ stop: HEADER.start + 100 });
  const b = join(dir, 'fw2.mpk');
  const w2 = JournalWriter.create(b, { ...HEADER, host: 'fw2' });
  w2.append([ev(1, 50, CONFIRMED | SEEN_REPLY | ASSURED)]);
  w2.close({ stop: HEADER.start + 100 });
  t.same(factsOf(analyzeJournals([a]).table), WANT, 'one journal');
  const merged = [
    [true, true],
    [true, true],
    [false, false],
    [false, true],
  ];
  t.same(factsOf(analyzeJournals([a, b]).table), merged, 'fw1 + fw2');
  t.same(factsOf(analyzeJournals([b, a]).table), merged, 'fw2 + fw1');
  t.end();
});

t.test('reports: assured reaches no report format', (t) => {
  const assured = new FlowTable();
  assured.addAll(EVENTS);
  const plain = new FlowTable();
  plain.addAll(EVENTS.map((e) => ({ ...e, status: e.status & ~ASSURED })));
  t.notSame(factsOf(assured), factsOf(plain), 'the tables differ in assured');
  const text = (tb: FlowTable) => [...textChunks(tb.flows())].join('');
  const csv = (tb: FlowTable) => [...csvChunks(tb.flows())].join('');
  const md = (tb: FlowTable) => [...mdChunks([], tb.flows())].join('');
  const html = (tb: FlowTable) => [...htmlChunks([], () => tb.flows())].join('');
  const json = (tb: FlowTable) => [...jsonChunks(tableReport(tb, []))].join('');
  for (const [name, render] of [
    ['text', text],
    ['csv', csv],
    ['md', md],
    ['html', html],
    ['json', json],
  ] as const) {
    t.equal(render(assured), render(plain), `${name}: byte for byte`);
  }
  const first = [...assured.flows()][0];
  t.notOk(first !== undefined && 'assured' in flowJson(first), 'flowJson has no assured');
  t.end();
});

t.test(
  'replay: assured survives the decoding thread’s packed columns (the built package)',
  async (t) => {
    // Journals of 8 MiB (format 1) or 2 MiB (format 2) and more go to a worker thread, which exists only in dist/ (npm run build).
    const built = pathToFileURL(join(PACKAGE_ROOT, 'dist', 'analyzer', 'core', 'replay.js')).href;
    const { analyzeJournalsInParallel } = (await import(
      built
    )) as typeof import('../../../analyzer/core/replay.js');
    const path = join(dir, 'big.mpk');
    // Format 1: these repetitive batches deflate below format 2's threshold (2 MiB), and the
    // point here is the packed columns, which are the same for both (parallel.test.ts runs both).
    const w = JournalWriter.create(path, HEADER, { formatVersion: 1 });
    for (let b = 0; b < 320; b++) {
      // 1,024 flows; the odd ones get ASSURED in batch 100 only, the even ones never.
      w.append(
        Array.from({ length: 1024 }, (_, i) => {
          const status = CONFIRMED | SEEN_REPLY | (b === 100 && i % 2 === 1 ? ASSURED : 0);
          const e = ev(0, b * 1024 + i, status);
          return { ...e, orig: { ...e.orig, sport: 20000 + i } };
        }),
      );
    }
    w.close({ stop: HEADER.start + 10_000_000 });
    t.ok(
      statSync(path).size >= minBytesInWorker(w.formatVersion),
      'big enough for the decoding thread',
    );
    const parallel = await analyzeJournalsInParallel([path], { collapse: { kind: 'none' } });
    const serial = analyzeJournals([path], { collapse: { kind: 'none' } });
    const assured = [...parallel.table.flows()].map((f) => f.assured);
    t.equal(assured.length, 1024);
    t.ok(
      assured.every((a, i) => a === (i % 2 === 1)),
      'the odd flows (sports 20001, 20003 …) are assured, the even ones not',
    );
    t.same(
      assured,
      [...serial.table.flows()].map((f) => f.assured),
      'as read on one thread',
    );
  },
);
