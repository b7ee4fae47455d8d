// Shared pieces of the journal tests: events, whole-journal reads and error capture.
import type { Test } from 'tap';
import { CtError } from '../../common/errors.js';
import type { CtEvent } from '../../journal/event.js';
import { openJournal, type ReadOptions } from '../../journal/reader.js';
import { HEADER } from '../helpers/journals.js';

export { HEADER, tempDir, writeJournal } from '../helpers/journals.js';

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

export interface ReadResult {
  events: CtEvent[];
  batches: number;
  reader: ReturnType<typeof openJournal>;
}

/** Reads a whole journal and closes it. */
export function readAll(path: string, opts?: ReadOptions): ReadResult {
  const reader = openJournal(path, opts);
  try {
    const events: CtEvent[] = [];
    let batches = 0;
    for (const b of reader.batches()) {
      events.push(...b);
      batches++;
    }
    return { events, batches, reader };
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
