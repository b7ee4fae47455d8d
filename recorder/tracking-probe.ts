// Whether conntrack tracks this network namespace, asked of the kernel: one probe flow on loopback.
import { createSocket, type Socket } from 'node:dgram';
import { sysCode } from '../common/errors.js';
import { type CtEvent, EventType, Proto } from '../journal/event.js';
import { startCapture } from '../native/index.js';
import { decodeRecords } from './records.js';

export type Family = 4 | 6;

export interface FamilyProbe {
  family: Family;
  /**
   * event: the probe flow's NEW event arrived; table: only the table dump held it (no event:
   * nf_conntrack_events=0); none: conntrack did not track it; unavailable: no loopback address
   * of this family here (IPv6 disabled), nothing to track.
   */
  seen: 'event' | 'table' | 'none' | 'unavailable';
  /** Milliseconds from the send to the NEW event reaching JavaScript (seen = event). */
  ms?: number;
  /** Entries of this family from other than loopback in the table dump (when one was made). */
  others?: number;
  /** Why the family is unavailable: the errno of the failed bind or send. */
  why?: string;
}

export interface TrackingProbe {
  families: FamilyProbe[];
  /** Receive buffer the kernel granted the probe's event socket for the size asked (bytes). */
  bufferSize: number;
}

const LOOPBACK: Record<Family, string> = { 4: '127.0.0.1', 6: '::1' };
const V6_LOOPBACK = Uint8Array.of(...new Array<number>(15).fill(0), 1);

interface Sent {
  family: Family;
  sport: number;
  dport: number;
  at: number;
}

function bound(type: 'udp4' | 'udp6', address: string, sockets: Socket[]): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket(type);
    sockets.push(s);
    s.once('error', reject);
    s.bind(0, address, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
  });
}

/** One datagram between two sockets of our own: no service of the host is touched. */
async function send(family: Family, sockets: Socket[]): Promise<Sent | FamilyProbe> {
  const type = family === 4 ? 'udp4' : 'udp6';
  const address = LOOPBACK[family];
  try {
    const rx = await bound(type, address, sockets);
    const tx = await bound(type, address, sockets);
    const dport = rx.address().port;
    const at = performance.now();
    // The entry is created and confirmed on the way out, before the send completes.
    await new Promise<void>((resolve, reject) =>
      tx.send('conntracker probe', dport, address, (err) => (err ? reject(err) : resolve())),
    );
    return { family, sport: tx.address().port, dport, at };
  } catch (err) {
    return { family, seen: 'unavailable', why: sysCode(err) ?? String(err) };
  }
}

function isLoopback(e: CtEvent): boolean {
  const src = e.orig.src;
  return e.family === 4
    ? src[0] === 127
    : src.length === 16 && src.every((b, i) => b === V6_LOOPBACK[i]);
}

/**
 * Subscribes to NEW events (with `bufferSize`, as the recording would), sends one UDP datagram on
 * 127.0.0.1 and one on ::1, and waits up to `waitMs` for their NEW events. A family whose event
 * did not come is looked up in a table dump: found there, conntrack tracks it but sends no events.
 * Needs CAP_NET_ADMIN and the addon; rejects with their CtError otherwise. The probe flows stay
 * in the table until their UDP timeout (30 s), like any other flow.
 */
export async function probeTracking(bufferSize: number, waitMs = 300): Promise<TrackingProbe> {
  const sockets: Socket[] = [];
  const sent: Sent[] = [];
  const found = new Map<Family, FamilyProbe>();
  const others: Record<Family, number> = { 4: 0, 6: 0 };
  let failure: Error | undefined;
  let wake = () => {};
  const batch: CtEvent[] = [];
  const capture = startCapture(
    { events: { new: true, update: false, destroy: false }, bufferSize, reliable: false },
    (records, count) => {
      batch.length = 0;
      decodeRecords(records, count, batch);
      const now = performance.now();
      for (const e of batch) {
        const s = sent.find(
          (p) =>
            p.family === e.family &&
            e.proto === Proto.UDP &&
            e.orig.sport === p.sport &&
            e.orig.dport === p.dport &&
            isLoopback(e),
        );
        if (s !== undefined && e.type === EventType.NEW) {
          found.set(s.family, { family: s.family, seen: 'event', ms: Math.round(now - s.at) });
        } else if (s !== undefined && e.type === EventType.SNAPSHOT) {
          if (!found.has(s.family)) found.set(s.family, { family: s.family, seen: 'table' });
        } else if (e.type === EventType.SNAPSHOT && !isLoopback(e)) {
          // Not loopback: earlier probes' flows (30 s) must not pass for other traffic.
          others[e.family]++;
        }
      }
      if (sent.every((s) => found.has(s.family))) wake();
    },
    (err) => {
      failure = err;
      wake();
    },
  );
  try {
    const results = await Promise.all([send(4, sockets), send(6, sockets)]);
    const unavailable: FamilyProbe[] = [];
    for (const r of results) {
      if ('seen' in r) unavailable.push(r);
      else sent.push(r);
    }
    if (sent.length > 0 && !sent.every((s) => found.has(s.family))) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, waitMs);
      });
      clearTimeout(timer);
    }
    const missing = sent.filter((s) => !found.has(s.family));
    if (missing.length > 0 && failure === undefined) await capture.dump();
    if (failure !== undefined) throw failure;
    const families = [
      ...sent.map(({ family }): FamilyProbe => {
        const hit = found.get(family);
        return hit?.seen === 'event'
          ? hit
          : { family, seen: hit?.seen ?? 'none', others: others[family] };
      }),
      ...unavailable,
    ].sort((a, b) => a.family - b.family);
    return { families, bufferSize: capture.bufferSize };
  } finally {
    for (const s of sockets) s.close();
    await capture.stop();
  }
}
