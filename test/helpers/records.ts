// CtEvents → native record bytes: the inverse of decodeRecords, written from FIELDS, for fakes and properties.
import type { CtEvent, Tuple } from '../../journal/event.js';
import { FIELDS as F, Flag, RECORD_SIZE } from '../../native/layout.js';

export function putU64(view: DataView, at: number, value: number): void {
  view.setUint32(at, value % 2 ** 32, true);
  view.setUint32(at + 4, Math.floor(value / 2 ** 32), true);
}

/** One batch as the addon hands it over: `events.length` records of RECORD_SIZE bytes. */
export function packRecords(events: readonly CtEvent[]): ArrayBuffer {
  const buf = new ArrayBuffer(events.length * RECORD_SIZE);
  const v = new DataView(buf);
  const bytes = new Uint8Array(buf);
  events.forEach((e, i) => {
    const at = i * RECORD_SIZE;
    const tuple = (tu: Tuple, dir: 'orig' | 'reply') => {
      bytes.set(tu.src, at + F[`${dir}Src`].offset);
      bytes.set(tu.dst, at + F[`${dir}Dst`].offset);
      v.setUint16(at + F[`${dir}Sport`].offset, tu.sport, true);
      v.setUint16(at + F[`${dir}Dport`].offset, tu.dport, true);
      v.setUint16(at + F[`${dir}IcmpId`].offset, tu.icmpId, true);
      v.setUint8(at + F[`${dir}IcmpType`].offset, tu.icmpType);
      v.setUint8(at + F[`${dir}IcmpCode`].offset, tu.icmpCode);
    };
    let flags: number = e.timeKernel ? Flag.TIME_KERNEL : 0;
    v.setUint8(at + F.type.offset, e.type);
    v.setUint8(at + F.family.offset, e.family);
    v.setUint8(at + F.proto.offset, e.proto);
    v.setUint32(at + F.status.offset, e.status, true);
    v.setUint32(at + F.id.offset, e.id, true);
    putU64(v, at + F.time.offset, e.time);
    if (e.start !== undefined) {
      flags |= Flag.HAS_START;
      putU64(v, at + F.start.offset, e.start);
    }
    if (e.tcpState !== undefined) {
      flags |= Flag.HAS_TCP_STATE;
      v.setUint8(at + F.tcpState.offset, e.tcpState);
    }
    if (e.mark !== undefined) {
      flags |= Flag.HAS_MARK;
      v.setUint32(at + F.mark.offset, e.mark, true);
    }
    if (e.zone !== undefined) {
      flags |= Flag.HAS_ZONE;
      v.setUint16(at + F.zone.offset, e.zone, true);
    }
    if (e.counters) {
      flags |= Flag.HAS_COUNTERS;
      putU64(v, at + F.origPackets.offset, e.counters.origPackets);
      putU64(v, at + F.origBytes.offset, e.counters.origBytes);
      putU64(v, at + F.replyPackets.offset, e.counters.replyPackets);
      putU64(v, at + F.replyBytes.offset, e.counters.replyBytes);
    }
    v.setUint16(at + F.flags.offset, flags, true);
    tuple(e.orig, 'orig');
    tuple(e.reply, 'reply');
  });
  return buf;
}
