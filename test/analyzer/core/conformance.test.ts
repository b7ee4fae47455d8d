// One flow-rules suite, every path that builds a table: each must equal a naive reference, whole Flow objects.
//
// The paths: FlowTable.add per event, addColumns over the journal scanner's columns and over
// EventColumns.fill, journal replay (analyzeJournals), and the recorder's live table (native
// records → decodeRecords → RecordingSink → liveTable). Each runs under every collapse mode:
// 1024, none, LO-HI, and ephemeral with a recorded ip_local_port_range, without one, and with an
// unusable (inverted) one. The reference below is written from docs/rules.md alone.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { type Collapse, type Flow, FlowTable, TABLES } from '../../../analyzer/core/flows.js';
import { analyzeJournals } from '../../../analyzer/core/replay.js';
import type { CtEvent } from '../../../journal/event.js';
import { EventColumns } from '../../../journal/event-columns.js';
import { decodeEvents, encodeEvents } from '../../../journal/events-codec.js';
import { scanEvents } from '../../../journal/events-scan.js';
import { EVENT_FIELDS, type HostAddress } from '../../../journal/format.js';
import { JournalWriter } from '../../../journal/writer.js';
import { decodeRecords } from '../../../recorder/records.js';
import { liveTable, RecordingSink } from '../../../recorder/sink.js';
import { arbAddress, arbEvent, arbFlowEvents, checkProperty } from '../../helpers/arbitraries.js';
import { HEADER, tempDir } from '../../helpers/journals.js';
import { packRecords } from '../../helpers/records.js';

/** One recording: its host, its header's port range and addresses, its batches in order. */
interface JournalInput {
  host: string;
  portRange: [number, number] | null;
  addresses?: HostAddress[];
  batches: CtEvent[][];
}

interface Case {
  mode: Collapse;
  journals: JournalInput[];
}

interface Built {
  flows: Flow[];
  skipped: { [reason: string]: number };
}

interface Implementation {
  name: string;
  /** Merges several journals (hosts) into one table, or takes one recording. */
  journals: 'many' | 'one';
  /** Names the hosts and learns their addresses (hosts, direction); the live table does not. */
  hosts: boolean;
  /** Property runs per mode (paths that write files get fewer). */
  runs: number;
  build(c: Case): Built;
}

const dir = tempDir(t, 'conformance');
let files = 0;

const built = (table: FlowTable): Built => ({ flows: [...table.flows()], skipped: table.skipped });

/** The collapse mode of one journal as the rules define it (ephemeral: its own range). */
function modeOf(mode: Collapse, j: JournalInput): Collapse {
  const r = j.portRange;
  if (mode.kind !== 'ephemeral' || r === null || r[0] > r[1]) return mode;
  return { kind: 'ephemeral', lo: r[0], hi: r[1] };
}

function writeJournal(j: JournalInput): string {
  const path = `${dir}/j${files++}.mpk`;
  const header = {
    ...HEADER,
    host: j.host,
    sysctls: { ...HEADER.sysctls, ip_local_port_range: j.portRange },
    ...(j.addresses === undefined ? {} : { addresses: j.addresses }),
  };
  const writer = JournalWriter.create(path, header);
  for (const b of j.batches) writer.append(b);
  writer.close({ stop: HEADER.start + 1 });
  return path;
}

function hostOf(table: FlowTable, j: JournalInput): number {
  const host = table.hostId(j.host);
  if (j.addresses !== undefined) table.addHostAddresses(host, j.addresses);
  return host;
}

/** addColumns over columns from `toColumns`, one journal after the other. */
function columnar(c: Case, toColumns: (batch: CtEvent[], cols: EventColumns) => void): Built {
  const table = new FlowTable({ collapse: c.mode });
  const cols = new EventColumns();
  for (const j of c.journals) {
    const host = hostOf(table, j);
    for (const b of j.batches) {
      toColumns(b, cols);
      table.addColumns(cols, { host, collapse: modeOf(c.mode, j) });
    }
  }
  return built(table);
}

const IMPLEMENTATIONS: Implementation[] = [
  {
    name: 'FlowTable.add per event',
    journals: 'one',
    hosts: true,
    runs: 150,
    build(c) {
      const j = c.journals[0] as JournalInput;
      const table = new FlowTable({ collapse: modeOf(c.mode, j) });
      const host = hostOf(table, j);
      for (const b of j.batches) for (const ev of b) table.add(ev, host);
      return built(table);
    },
  },
  {
    name: 'addColumns over the journal scanner (encodeEvents → scanEvents)',
    journals: 'many',
    hosts: true,
    runs: 150,
    build: (c) =>
      columnar(c, (batch, cols) => {
        const payload = encodeEvents(batch);
        assert.ok(scanEvents(payload, EVENT_FIELDS.length, cols), 'the scanner reads the batch');
      }),
  },
  {
    name: 'addColumns over EventColumns.fill (decoded batches)',
    journals: 'many',
    hosts: true,
    runs: 150,
    build: (c) => columnar(c, (batch, cols) => cols.fill(decodeEvents(encodeEvents(batch)))),
  },
  {
    name: 'journal replay (analyzeJournals)',
    journals: 'many',
    hosts: true,
    runs: 60,
    build(c) {
      const paths = c.journals.map(writeJournal);
      return built(analyzeJournals(paths, { collapse: c.mode }).table);
    },
  },
  {
    name: "the recorder's live table (native records → RecordingSink)",
    journals: 'one',
    hosts: false,
    runs: 80,
    build(c) {
      const j = c.journals[0] as JournalInput;
      const header = {
        ...HEADER,
        sysctls: { ...HEADER.sysctls, ip_local_port_range: j.portRange },
      };
      const table = liveTable(c.mode, j.portRange);
      const sink = new RecordingSink(table);
      const writer = sink.open(`${dir}/j${files++}.mpk`, header);
      for (const b of j.batches) {
        const decoded: CtEvent[] = [];
        decodeRecords(packRecords(b), b.length, decoded);
        sink.accept(decoded);
      }
      writer.close({ stop: HEADER.start + 1 });
      return built(table);
    },
  },
];

// --- the reference: docs/rules.md written the obvious way ----------------------------------

const REF_TABLES: { [familyProto: string]: (typeof TABLES)[number] } = {
  '4/6': 'TCPv4',
  '4/17': 'UDPv4',
  '4/1': 'ICMPv4',
  '6/6': 'TCPv6',
  '6/17': 'UDPv6',
  '6/58': 'ICMPv6',
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const num = (b: Uint8Array) => BigInt(`0x0${hex(b)}`);
const loopback = (b: Uint8Array) =>
  b.length === 4 ? b[0] === 127 : hex(b) === `${'0'.repeat(31)}1`;

/** The table of docs/rules.md "Source-port collapsing". */
function referenceSport(mode: Collapse, sport: number): number {
  if (mode.kind === '1024') return Math.min(sport, 1024);
  if (mode.kind === 'none') return sport;
  return sport >= mode.lo && sport <= mode.hi ? mode.lo : sport;
}

interface RefTarget {
  address: Uint8Array;
  port: number;
  more: boolean;
}

function reference(c: Case, impl: Implementation): Built {
  type Row = Omit<
    Flow,
    'hosts' | 'nat' | 'direction' | 'confirmed' | 'assured' | 'firstSeen' | 'lastSeen' | 'mark'
  > & {
    /** docs/rules.md `mark`: the latest marked event's (at one time, the larger); 0: none. */
    mark: number;
    markTime: number;
    confirmed: boolean;
    /** docs/rules.md `assured`: some event carried IPS_ASSURED (0x4), an OR like confirmed. */
    assured: boolean;
    firstSeen: number;
    lastSeen: number;
    hosts: Set<string>;
    nat: { dst?: RefTarget; src?: RefTarget };
  };
  const rows = new Map<string, Row>();
  const skipped: { [reason: string]: number } = {};
  for (const j of c.journals) {
    const mode = modeOf(c.mode, j);
    for (const e of j.batches.flat()) {
      const table = REF_TABLES[`${e.family}/${e.proto}`];
      if (table === undefined) {
        const reason = `IPv${e.family} proto ${e.proto}`;
        skipped[reason] = (skipped[reason] ?? 0) + 1;
        continue;
      }
      const o = e.orig;
      const icmp = table.startsWith('ICMP');
      const fresh: Row = {
        table,
        family: e.family as 4 | 6,
        proto: e.proto,
        src: Uint8Array.from(o.src),
        dst: Uint8Array.from(o.dst),
        sport: icmp ? 0 : referenceSport(mode, o.sport),
        dport: icmp ? 0 : o.dport,
        icmpType: icmp ? o.icmpType : 0,
        icmpCode: icmp ? o.icmpCode : 0,
        confirmed: false,
        assured: false,
        firstSeen: e.time,
        lastSeen: e.time,
        hosts: new Set(),
        nat: {},
        mark: 0,
        markTime: 0,
      };
      const { sport, dport, icmpType, icmpCode } = fresh;
      const key = JSON.stringify([table, hex(o.src), hex(o.dst), sport, dport, icmpType, icmpCode]);
      const row = rows.get(key) ?? fresh;
      rows.set(key, row);
      row.confirmed ||= (e.status & 0x2) !== 0;
      row.assured ||= (e.status & 0x4) !== 0;
      row.firstSeen = Math.min(row.firstSeen, e.time);
      row.lastSeen = Math.max(row.lastSeen, e.time);
      if (impl.hosts) row.hosts.add(j.host);
      const m = e.mark ?? 0;
      if (
        m !== 0 &&
        (row.mark === 0 || e.time > row.markTime || (e.time === row.markTime && m > row.mark))
      ) {
        row.mark = m;
        row.markTime = e.time;
      }
      // docs/rules.md `nat`: the reply's source is not the original destination (DNAT), its
      // destination not the original source (SNAT, compared by address only afterwards).
      const r = e.reply;
      if (hex(r.src) !== hex(o.dst) || r.sport !== o.dport) {
        note(row.nat, 'dst', r.src, r.sport, true);
      }
      if (hex(r.dst) !== hex(o.src) || r.dport !== o.sport) {
        note(row.nat, 'src', r.dst, r.dport, false);
      }
    }
  }
  // A host's addresses: the union over its journals that record them.
  const local = new Map<string, Set<string>>();
  for (const j of c.journals) {
    if (!impl.hosts || j.addresses === undefined) continue;
    const set = local.get(j.host) ?? new Set<string>();
    for (const a of j.addresses) set.add(hex(a.address));
    local.set(j.host, set);
  }
  const flows = [...rows.values()].map((row): Flow => {
    const { hosts, nat, mark, markTime: _, ...rest } = row;
    const dst = nat.dst?.address ?? row.dst;
    const found = new Set<string>();
    for (const h of hosts) {
      const mine = local.get(h);
      if (mine === undefined) continue;
      const from = mine.has(hex(row.src)) || loopback(row.src);
      const to = mine.has(hex(dst)) || loopback(dst);
      found.add(from && to ? 'local' : to ? 'input' : from ? 'output' : 'forward');
    }
    return {
      ...rest,
      hosts: [...hosts].sort(),
      ...(nat.dst || nat.src ? { nat } : {}),
      ...(found.size > 0 ? { direction: [...found].sort() as Flow['direction'] } : {}),
      ...(mark === 0 ? {} : { mark }),
    };
  });
  const order = (f: Flow) => [
    BigInt(TABLES.indexOf(f.table)),
    num(f.src),
    num(f.dst),
    BigInt(f.dport),
    BigInt(f.sport),
    BigInt(f.icmpType),
    BigInt(f.icmpCode),
  ];
  flows.sort((a, b) => {
    const [ka, kb] = [order(a), order(b)];
    const i = ka.findIndex((x, k) => x !== kb[k]);
    return i < 0 ? 0 : (ka[i] as bigint) < (kb[i] as bigint) ? -1 : 1;
  });
  return { flows, skipped };
}

/** The first translation of a kind is shown; `more` once another one differs from it. */
function note(
  nat: { dst?: RefTarget; src?: RefTarget },
  kind: 'dst' | 'src',
  address: Uint8Array,
  port: number,
  portCounts: boolean,
): void {
  const first = nat[kind];
  if (first === undefined) {
    nat[kind] = { address: Uint8Array.from(address), port, more: false };
  } else if (hex(first.address) !== hex(address) || (portCounts && first.port !== port)) {
    first.more = true;
  }
}

// --- the cases -------------------------------------------------------------------------------

/** Boundaries of the arbitraries' small port pool (1023–1025, 33000, 65535) and Linux's range. */
const EDGES = [0, 1, 22, 443, 1023, 1024, 1025, 32768, 33000, 60999, 65535];
const arbRange = fc
  .tuple(fc.constantFrom(...EDGES), fc.constantFrom(...EDGES))
  .map(([a, b]): [number, number] => [Math.min(a, b), Math.max(a, b)]);

/** Each collapse mode, and the port ranges the journals' headers may record under it. */
const MODES: {
  label: string;
  mode: fc.Arbitrary<Collapse>;
  portRange: fc.Arbitrary<[number, number] | null>;
}[] = [
  {
    label: '1024',
    mode: fc.constant({ kind: '1024' }),
    portRange: fc.option(arbRange, { nil: null }),
  },
  {
    label: 'none',
    mode: fc.constant({ kind: 'none' }),
    portRange: fc.option(arbRange, { nil: null }),
  },
  {
    label: 'LO-HI',
    mode: arbRange.map(([lo, hi]): Collapse => ({ kind: 'range', lo, hi })),
    portRange: fc.option(arbRange, { nil: null }),
  },
  {
    label: 'ephemeral, the journal records ip_local_port_range',
    mode: fc.constant({ kind: 'ephemeral', lo: 32768, hi: 60999 }),
    portRange: arbRange,
  },
  {
    label: 'ephemeral, no recorded range (Linux default or another fallback)',
    mode: fc.oneof(
      fc.constant<Collapse>({ kind: 'ephemeral', lo: 32768, hi: 60999 }),
      arbRange.map(([lo, hi]): Collapse => ({ kind: 'ephemeral', lo, hi })),
    ),
    portRange: fc.constant(null),
  },
  {
    label: 'ephemeral, an unusable (inverted) recorded range',
    mode: fc.constant({ kind: 'ephemeral', lo: 32768, hi: 60999 }),
    portRange: arbRange.filter(([lo, hi]) => lo < hi).map(([lo, hi]): [number, number] => [hi, lo]),
  },
];

/** Cuts events into batches at the given points, as the native reader would hand them over. */
function split<T>(items: readonly T[], cuts: readonly number[]): T[][] {
  const points = [...new Set(cuts.map((c) => c % (items.length + 1)))].sort((a, b) => a - b);
  const out: T[][] = [];
  let from = 0;
  for (const p of [...points, items.length]) {
    out.push(items.slice(from, p));
    from = p;
  }
  return out;
}

const arbHostAddresses: fc.Arbitrary<HostAddress[] | undefined> = fc.option(
  fc.array(
    fc.constantFrom<4 | 6>(4, 6).chain((family) =>
      arbAddress(family, true).map(
        (address): HostAddress => ({
          ifname: 'eth0',
          family,
          address,
          prefix: family === 4 ? 24 : 64,
        }),
      ),
    ),
    { maxLength: 4 },
  ),
  { nil: undefined },
);

/**
 * Flow events whose connections were translated differently (DNAT to other addresses or ports,
 * SNAT to other addresses): what makes a flow's NAT show "and others".
 */
const arbTranslated: fc.Arbitrary<CtEvent[]> = arbFlowEvents({ maxLength: 40 }).chain((evs) =>
  fc
    .tuple(
      ...evs.map((e) => {
        const family = e.family === 4 ? 4 : 6;
        const rewrite = fc.record(
          {
            src: arbAddress(family, true),
            dst: arbAddress(family, true),
            sport: fc.constantFrom(80, 8443),
          },
          { requiredKeys: ['sport'] },
        );
        return fc.option(rewrite, { nil: undefined });
      }),
    )
    .map((rewrites) =>
      evs.map((e, i): CtEvent => {
        const w = rewrites[i];
        return w === undefined ? e : { ...e, reply: { ...e.reply, ...w } };
      }),
    ),
);

function arbJournal(portRange: fc.Arbitrary<[number, number] | null>): fc.Arbitrary<JournalInput> {
  const events = fc.oneof(
    arbFlowEvents({ maxLength: 50 }),
    fc.array(arbEvent(), { maxLength: 20 }),
    arbTranslated,
  );
  return fc
    .record({
      host: fc.constantFrom('fw1', 'fw2'),
      portRange,
      addresses: arbHostAddresses,
      events,
      cuts: fc.array(fc.nat(), { maxLength: 4 }),
    })
    .map(({ events: evs, cuts, addresses, ...rest }) => ({
      ...rest,
      ...(addresses === undefined ? {} : { addresses }),
      batches: split(evs, cuts),
    }));
}

function arbCase(m: (typeof MODES)[number], impl: Implementation): fc.Arbitrary<Case> {
  const max = impl.journals === 'many' ? 2 : 1;
  // Two journals share most flows: the second replays the first's events (plus its own).
  return fc
    .record({
      mode: m.mode,
      journals: fc.array(arbJournal(m.portRange), { minLength: 1, maxLength: max }),
    })
    .map(({ mode, journals }) => {
      const [first, second] = journals as [JournalInput, JournalInput | undefined];
      if (second === undefined) return { mode, journals };
      return {
        mode,
        journals: [first, { ...second, batches: [...first.batches, ...second.batches] }],
      };
    });
}

// --- the suite -------------------------------------------------------------------------------

for (const impl of IMPLEMENTATIONS) {
  for (const m of MODES) {
    t.test(
      `conformance: ${impl.name} builds the reference table, collapse ${m.label}`,
      async (t) => {
        checkProperty(
          t,
          fc.property(arbCase(m, impl), (c) => {
            const got = impl.build(c);
            const want = reference(c, impl);
            assert.deepStrictEqual(got.flows, want.flows);
            assert.deepStrictEqual({ ...got.skipped }, want.skipped);
          }),
          { numRuns: impl.runs },
        );
      },
    );
  }
}

t.test('conformance: the cases reach every rule the suite claims to check', async (t) => {
  // Guards the generators: a suite whose cases never translate, never confirm or never collapse
  // would pass without checking those rules.
  const seen = {
    nat: 0,
    more: 0,
    confirmed: 0,
    unconfirmed: 0,
    assured: 0,
    repliedNotAssured: 0,
    direction: 0,
    collapsed: 0,
    skipped: 0,
    twoHosts: 0,
  };
  const impl = IMPLEMENTATIONS[1] as Implementation;
  for (const m of MODES) {
    for (const c of fc.sample(arbCase(m, impl), { numRuns: 100, seed: 42 })) {
      const { flows, skipped } = reference(c, impl);
      const sports = new Set(c.journals.flatMap((j) => j.batches.flat().map((e) => e.orig.sport)));
      for (const f of flows) {
        if (f.nat) seen.nat++;
        if (f.nat?.dst?.more || f.nat?.src?.more) seen.more++;
        if (f.confirmed) seen.confirmed++;
        else seen.unconfirmed++;
        if (f.assured) seen.assured++;
        if (f.confirmed && !f.assured) seen.repliedNotAssured++;
        if (f.direction) seen.direction++;
        if (f.hosts.length === 2) seen.twoHosts++;
        if (!f.table.startsWith('ICMP') && !sports.has(f.sport)) seen.collapsed++;
      }
      if (Object.keys(skipped).length > 0) seen.skipped++;
    }
  }
  for (const [what, n] of Object.entries(seen)) t.ok(n > 10, `${what}: ${n}`);
});
