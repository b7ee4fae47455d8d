// Shared pieces of the journal tests: events, whole-journal reads and error capture.
import fc from 'fast-check';
import type { Test } from 'tap';
import { CtError } from '../../common/errors.js';
import type { CtEvent } from '../../journal/event.js';
import {
  FORMAT_VERSIONS,
  type FormatVersion,
  GapCause,
  type JournalGap,
} from '../../journal/format.js';
import { type JournalItem, openJournal, type ReadOptions } from '../../journal/reader.js';
import { JournalWriter } from '../../journal/writer.js';
import { MAX_TIME_US } from '../helpers/arbitraries.js';
import { HEADER } from '../helpers/journals.js';

export { HEADER, tempDir, writeJournal } from '../helpers/journals.js';

/**
 * The formats the frame-layer tests run for: everything but the events payload is the same in
 * each, so every torn-tail, damage, digest and checkpoint case must hold in each.
 */
export const FORMATS: readonly FormatVersion[] = FORMAT_VERSIONS;

/** A TCP NEW event without NAT, as the kernel reports a client's SYN. */
export function tcpNew(i: number, base = HEADER.start): CtEvent {
  const src = Uint8Array.of(192, 168, 100, 118);
  const dst = Uint8Array.of(34, 71, 14, (52 + i) & 0xff);
  const sport = 40000 + (i % 20000);
  return {
    type: 1,
    family: 4,
    proto: 6,
    status: 0x8,
    id: (0x9e3779b9 * (i + 1)) >>> 0,
    time: base + i * 137,
    timeKernel: false,
    orig: { src, dst, sport, dport: 443, icmpType: 0, icmpCode: 0, icmpId: 0 },
    reply: { src: dst, dst: src, sport: 443, dport: sport, icmpType: 0, icmpCode: 0, icmpId: 0 },
    tcpState: 1,
  };
}

/** Events with plain numbers and Uint8Arrays, so decoded Buffers compare equal to originals. */
export function plain(events: readonly CtEvent[]): unknown[] {
  const tuple = (t: CtEvent['orig']) => ({ ...t, src: [...t.src], dst: [...t.dst] });
  return events.map((e) => ({ ...e, orig: tuple(e.orig), reply: tuple(e.reply) }));
}

/** A gap as the recorder writes one after a kernel overrun, with `over` changes. */
export function gap(over: Partial<JournalGap> = {}): JournalGap {
  return {
    from: HEADER.start + 1_000,
    to: HEADER.start + 5_000,
    lost: 17,
    lostKnown: true,
    cause: GapCause.ENOBUFS,
    resync: 3,
    ...over,
  };
}

/** Any gap format v1 allows. */
export function arbGap(): fc.Arbitrary<JournalGap> {
  return fc
    .record({
      from: fc.integer({ min: 0, max: MAX_TIME_US }),
      span: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 10_000_000 })),
      lost: fc.oneof(fc.nat(1000), fc.integer({ min: 0, max: 2 ** 40 })),
      lostKnown: fc.boolean(),
      cause: fc.oneof(
        fc.constantFrom(GapCause.ENOBUFS, GapCause.QUEUE, '__proto__'),
        fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
      ),
      resync: fc.integer({ min: -1, max: 1_000_000 }),
    })
    .map(({ span, ...g }) => ({ ...g, to: g.from + span }));
}

/** A journal item as the tests write it: an events batch or a gap. */
export type Item = CtEvent[] | JournalGap;

/**
 * Writes batches and gaps in the given order; with `trailer` false the recording "crashes". In
 * the writer's default format unless `formatVersion` says which.
 */
export function writeItems(
  path: string,
  items: readonly Item[],
  trailer = true,
  formatVersion?: FormatVersion,
): JournalWriter {
  const w = JournalWriter.create(path, HEADER, { formatVersion });
  for (const item of items) {
    if (Array.isArray(item)) w.append(item);
    else w.appendGap(item);
  }
  if (trailer) w.close({ stop: HEADER.start + 60_000_000 });
  else w.closeAfterFailure();
  return w;
}

export interface ReadResult {
  events: CtEvent[];
  batches: number;
  gaps: JournalGap[];
  /** Every item in file order. */
  items: JournalItem[];
  reader: ReturnType<typeof openJournal>;
}

/** Reads a whole journal and closes it. */
export function readAll(path: string, opts?: ReadOptions): ReadResult {
  const reader = openJournal(path, opts);
  try {
    const events: CtEvent[] = [];
    const gaps: JournalGap[] = [];
    const items: JournalItem[] = [];
    let batches = 0;
    for (const item of reader.items()) {
      items.push(item);
      if (item.kind === 'gap') {
        gaps.push(item.gap);
        continue;
      }
      events.push(...item.events);
      batches++;
    }
    return { events, batches, gaps, items, reader };
  } finally {
    reader.close();
  }
}

/** Runs fn and returns the CtError it throws (fails the test for any other outcome). */
export function ctErrorOf(t: Test, fn: () => unknown): CtError | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CtError) return err;
    t.fail(`expected a CtError, got ${String(err)}`);
    return undefined;
  }
  t.fail('expected a CtError, nothing was thrown');
  return undefined;
}
