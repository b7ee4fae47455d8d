// Native record batches → CtEvent objects (journal/event.ts), reading the layout of native/layout.ts.
import type { CtEvent, EventTypeCode, Tuple } from '../journal/event.js';
import { FIELDS as F, Flag, RECORD_SIZE } from '../native/layout.js';

const TWO_32 = 2 ** 32;

function u64(view: DataView, at: number): number {
  return view.getUint32(at, true) + view.getUint32(at + 4, true) * TWO_32;
}

// A tuple's fields relative to its start; the reply tuple has the same shape as the original.
const ORIG = F.origSrc.offset;
const REPLY = F.replySrc.offset;
const T_DST = F.origDst.offset - ORIG;
const T_SPORT = F.origSport.offset - ORIG;
const T_DPORT = F.origDport.offset - ORIG;
const T_ICMP_ID = F.origIcmpId.offset - ORIG;
const T_ICMP_TYPE = F.origIcmpType.offset - ORIG;
const T_ICMP_CODE = F.origIcmpCode.offset - ORIG;

function tuple(view: DataView, bytes: Uint8Array, at: number, addrLen: number): Tuple {
  return {
    src: bytes.slice(at, at + addrLen),
    dst: bytes.slice(at + T_DST, at + T_DST + addrLen),
    sport: view.getUint16(at + T_SPORT, true),
    dport: view.getUint16(at + T_DPORT, true),
    icmpType: bytes[at + T_ICMP_TYPE] as number,
    icmpCode: bytes[at + T_ICMP_CODE] as number,
    icmpId: view.getUint16(at + T_ICMP_ID, true),
  };
}

/**
 * Appends one CtEvent per record to `out`. Addresses are copies (4 or 16 bytes), so the batch
 * buffer can be dropped; optional fields are present only when their flag is set.
 */
export function decodeRecords(records: ArrayBuffer, count: number, out: CtEvent[]): void {
  if (!Number.isInteger(count) || count < 0 || count * RECORD_SIZE > records.byteLength) {
    throw new RangeError(`${count} records do not fit in ${records.byteLength} bytes`);
  }
  const view = new DataView(records);
  const bytes = new Uint8Array(records);
  for (let i = 0; i < count; i++) {
    const at = i * RECORD_SIZE;
    const type = bytes[at + F.type.offset] as number;
    const family = bytes[at + F.family.offset] as number;
    if (type < 1 || type > 4 || (family !== 4 && family !== 6)) {
      throw new RangeError(`native record ${i} has type ${type} and family ${family}`);
    }
    const addrLen = family === 4 ? 4 : 16;
    const flags = view.getUint16(at + F.flags.offset, true);
    const event: CtEvent = {
      type: type as EventTypeCode,
      family,
      proto: bytes[at + F.proto.offset] as number,
      status: view.getUint32(at + F.status.offset, true),
      id: view.getUint32(at + F.id.offset, true),
      time: u64(view, at + F.time.offset),
      timeKernel: (flags & Flag.TIME_KERNEL) !== 0,
      orig: tuple(view, bytes, at + ORIG, addrLen),
      reply: tuple(view, bytes, at + REPLY, addrLen),
    };
    if (flags & Flag.HAS_START) event.start = u64(view, at + F.start.offset);
    if (flags & Flag.HAS_TCP_STATE) event.tcpState = bytes[at + F.tcpState.offset] as number;
    if (flags & Flag.HAS_MARK) event.mark = view.getUint32(at + F.mark.offset, true);
    if (flags & Flag.HAS_ZONE) event.zone = view.getUint16(at + F.zone.offset, true);
    if (flags & Flag.HAS_COUNTERS) {
      event.counters = {
        origPackets: u64(view, at + F.origPackets.offset),
        origBytes: u64(view, at + F.origBytes.offset),
        replyPackets: u64(view, at + F.replyPackets.offset),
        replyBytes: u64(view, at + F.replyBytes.offset),
      };
    }
    out.push(event);
  }
}
