// A flow's recorded ct mark (its latest marked event's, in any event order) and each host's network in an Analysis; neither reaches a report.
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
import type { CtEvent } from '../../../journal/event.js';
import { EventColumns } from '../../../journal/event-columns.js';
import { type HostRoute, TABLE_MAIN } from '../../../journal/format.js';
import { JournalWriter } from '../../../journal/writer.js';
import { HEADER, tempDir } from '../../helpers/journals.js';

const dir = tempDir(t, 'flow-mark');

/** Event `i` of flow `flow` (one of three TCP flows), at time `time`, with `mark` when given. */
function ev(flow: number, time: number, mark?: number): CtEvent {
  const src = Uint8Array.of(10, 0, 0, 1);
  const dst = Uint8Array.of(10, 0, 1, flow);
  return {
    type: 2,
    family: 4,
    proto: 6,
    status: 0xa,
    id: flow + 1,
    time: HEADER.start + time,
    timeKernel: false,
    orig: { src, dst, sport: 40000, dport: 443, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: { src: dst, dst: src, sport: 443, dport: 40000, icmpType: 0, icmpCode: 0, icmpId: 0 },
    tcpState: 3,
    ...(mark === undefined ? {} : { mark }),
  };
}

/** Flow 0: marked 5 then 7 then a mark 0; flow 1: 9 and 3 at one time; flow 2: never marked. */
const EVENTS: CtEvent[] = [
  ev(0, 10, 5),
  ev(0, 20),
  ev(0, 30, 7),
  ev(0, 40, 0),
  ev(0, 50),
  ev(1, 10, 9),
  ev(1, 10, 3),
  ev(2, 10),
  ev(2, 20, 0),
];

const marksOf = (table: FlowTable) => [...table.flows()].map((f) => f.mark);

t.test(
  'flows: a flow’s mark is its latest marked event’s; mark 0 and none do not clear it',
  (t) => {
    const table = new FlowTable();
    table.addAll(EVENTS);
    t.same(marksOf(table), [7, 9, undefined], 'latest non-zero; at one time the larger; none');
    const unmarked = [...table.flows()][2];
    t.notOk(unmarked !== undefined && 'mark' in unmarked, 'no mark key on an unmarked flow');
    t.end();
  },
);

t.test(
  'flows: the mark does not depend on event order, batch split or path (objects, columns)',
  (t) => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(EVENTS, { minLength: EVENTS.length, maxLength: EVENTS.length }),
        fc.integer({ min: 1, max: EVENTS.length }),
        (order, size) => {
          const objects = new FlowTable();
          objects.addAll(order);
          const columns = new FlowTable();
          const c = new EventColumns();
          for (let i = 0; i < order.length; i += size) {
            c.fill(order.slice(i, i + size));
            columns.addColumns(c);
          }
          t.same(marksOf(objects), [7, 9, undefined]);
          t.same(marksOf(columns), [7, 9, undefined]);
        },
      ),
      { numRuns: 100 },
    );
    t.end();
  },
);

/** The routes of host `fw1` at start, and after its default route moved. */
const ROUTES: HostRoute[] = [
  {
    family: 4,
    dst: Uint8Array.of(0, 0, 0, 0),
    prefix: 0,
    dev: 'eth0',
    gateway: Uint8Array.of(192, 0, 2, 1),
    type: 'unicast',
    table: TABLE_MAIN,
    metric: 0,
  },
  {
    family: 4,
    dst: Uint8Array.of(10, 0, 1, 0),
    prefix: 24,
    dev: 'eth1',
    type: 'unicast',
    table: TABLE_MAIN,
    metric: 0,
  },
];
const MOVED: HostRoute[] = [{ ...(ROUTES[0] as HostRoute), dev: 'wlan0' }, ROUTES[1] as HostRoute];

/** Journals of two hosts: fw1 with addresses and routes (and a change), fw2 with neither. */
function journals(): string[] {
  const a = join(dir, 'fw1.mpk');
  const w = JournalWriter.create(a, {
    ...HEADER,
    host: 'fw1',
    addresses: [{ ifname: 'eth1', family: 4, address: Uint8Array.of(10, 0, 1, 254), prefix: 24 }],
    routes: ROUTES,
  });
  // The fast scanner's path: events with marks in position 16.
  w.append(EVENTS.slice(0, 5));
  w.noteNetwork({ routes: { time: HEADER.start + 60, routes: MOVED } });
  w.append(EVENTS.slice(5));
  w.close({ stop: HEADER.start + 100 });
  const b = join(dir, 'fw2.mpk');
  const w2 = JournalWriter.create(b, { ...HEADER, host: 'fw2' });
  w2.append([ev(2, 70, 11)]);
  w2.close({ stop: HEADER.start + 100 });
  return [a, b];
}

t.test('replay: marks come through the journal reader; each host gets its network', (t) => {
  const analysis = analyzeJournals(journals());
  t.same(marksOf(analysis.table), [7, 9, 11], 'fw2’s later event marks flow 2');
  t.same([...analysis.networks.keys()].sort(), ['fw1', 'fw2'], 'by the names Flow.hosts gives');
  const fw1 = analysis.networks.get('fw1');
  t.equal(fw1?.routeDevice(Uint8Array.of(10, 0, 1, 7)), 'eth1', 'a route both sets have');
  t.equal(
    fw1?.routeDevice(Uint8Array.of(8, 8, 8, 8)),
    undefined,
    'the default route moved from eth0 to wlan0 during the recording: not one device',
  );
  t.equal(fw1?.addressType(Uint8Array.of(10, 0, 1, 254)), 'local');
  t.ok(fw1?.hasRoutes);
  const fw2 = analysis.networks.get('fw2');
  t.notOk(fw2?.hasRoutes, 'fw2 recorded no routes');
  t.notOk(fw2?.hasAddresses, '…and no addresses');
  for (const j of analysis.journals) {
    t.notOk(
      'networks' in j || 'routes' in j,
      `${j.path}: the summary a report serializes is unchanged`,
    );
  }
  t.end();
});

t.test('reports: a recorded mark reaches no report format', (t) => {
  const marked = new FlowTable();
  marked.addAll(EVENTS);
  const plain = new FlowTable();
  plain.addAll(EVENTS.map(({ mark: _, ...e }) => e));
  t.notSame(marksOf(marked), marksOf(plain), 'the tables differ in their marks');
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
    t.equal(render(marked), render(plain), `${name}: byte for byte`);
  }
  const first = [...marked.flows()][0];
  t.notOk(first !== undefined && 'mark' in flowJson(first), 'flowJson has no mark');
  t.end();
});

t.test(
  'replay: marks survive the decoding thread’s packed columns (the built package)',
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
      // 1,024 flows, each event marked with its batch number (or not at all, every 7th batch).
      w.append(
        Array.from({ length: 1024 }, (_, i) => {
          const e = ev(0, b * 1024 + i, b % 7 === 6 ? undefined : b + 1);
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
    const marks = marksOf(parallel.table);
    t.equal(marks.length, 1024);
    // The last batch (319) is marked 320; every flow's latest marked event is in it.
    t.ok(
      marks.every((m) => m === 320),
      'each flow has its latest batch’s mark',
    );
    t.same(marks, marksOf(serial.table), 'the same as read on one thread');
  },
);
