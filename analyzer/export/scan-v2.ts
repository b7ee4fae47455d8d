// The export's fast path for format 2: an events payload's layout read into an ExportBatch, every field.
//
// decodeEventsV2 (journal/events-v2.ts) is the definition of a valid payload and batch.fill
// of its events the definition of the batch. The layout and its dictionaries are checked by
// the same code (layoutOfEventsV2); this file is a second event loop, after events-v2.ts's
// walk, that writes every exported field into the batch instead of a CtEvent; it reads the
// varints and indexes with events-v2.ts's own helpers. Whatever that walk would reject makes
// scanExportV2 return false, and the caller decodes the payload to name the damage.
// test/analyzer/export/export-scan.test.ts holds it to fill(decode(payload)).
import { wordAt } from '../../journal/event-columns.js';
import {
  indexAt,
  KIND_FLAGS,
  layoutOfEventsV2,
  readSv,
  readUv,
  varintPos,
  varintsAt,
} from '../../journal/events-v2.js';
import { Damage } from '../../journal/validate.js';
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';

const MAX = Number.MAX_SAFE_INTEGER;
const K_KERNEL = KIND_FLAGS.kernel;
const K_TCP = KIND_FLAGS.tcp;
const K_START = KIND_FLAGS.start;
const K_COUNTERS = KIND_FLAGS.counters;
const K_MARK = KIND_FLAGS.mark;
const K_ZONE = KIND_FLAGS.zone;

/** Thrown inside the loop; scanExportV2 turns it into `false`. */
const UNUSUAL = new Error('not an events layout this loop takes');

const EMPTY = new Uint8Array(0);

// Address table entries as the batch holds them: 4 big-endian words each.
let words4 = new Uint32Array(0);
let words6 = new Uint32Array(0);

/**
 * Reads a format 2 events payload into `batch` and returns true, or returns false (the batch
 * then holds garbage) when the payload is damaged: decodeEventsV2 then names the damage.
 */
export function scanExportV2(payload: Uint8Array, _fields: number, batch: ExportBatch): boolean {
  try {
    loop(layoutOfEventsV2(payload), batch);
    return true;
  } catch (err) {
    if (err === UNUSUAL || err instanceof Damage) return false;
    throw err;
  } finally {
    varintsAt(EMPTY, 0);
  }
}

function loop(q: ReturnType<typeof layoutOfEventsV2>, batch: ExportBatch): void {
  const b = q.layout;
  const n = q.n;
  batch.reset(n);
  let w4 = words4;
  let w6 = words6;
  if (w4.length < 4 * q.nA4) words4 = w4 = new Uint32Array(Math.max(4 * q.nA4, 2 * w4.length));
  if (w6.length < 4 * q.nA6) words6 = w6 = new Uint32Array(Math.max(4 * q.nA6, 2 * w6.length));
  for (let e = 0; e < q.nA4; e++) {
    w4[4 * e] = wordAt(b, q.a4 + 4 * e);
    w4[4 * e + 1] = 0;
    w4[4 * e + 2] = 0;
    w4[4 * e + 3] = 0;
  }
  for (let e = 0; e < q.nA6; e++) {
    const p = q.a6 + 16 * e;
    w6[4 * e] = wordAt(b, p);
    w6[4 * e + 1] = wordAt(b, p + 4);
    w6[4 * e + 2] = wordAt(b, p + 8);
    w6[4 * e + 3] = wordAt(b, p + 12);
  }
  const nConn = q.nConn;
  const nKind = q.nKind;
  const cw = q.cw;
  const kw = q.kw;
  const eConn = q.eConn;
  const eKind = q.eKind;
  const tEnd = q.x;
  const xEnd = q.end;
  const cFam = q.kFam;
  const cProto = q.kProto;
  const cId = q.kId;
  const cAddr = q.kAddr;
  const cPorts = q.kPorts;
  const cIcmp = q.kIcmp;
  const dFlags = q.kindFlags;
  const dStatus = q.kindStatus;
  const dTcp = q.kindTcp;
  const { time: bTime, start: bStart, status: bStatus, id: bId, mark: bMark, addr } = batch;
  const bConn = batch.conn;
  batch.conns = nConn;
  const { sport: bSport, dport: bDport, replySport: bRSport, replyDport: bRDport } = batch;
  const { icmpId: bIcmpId, zone: bZone, type: bType, family: bFamily, proto: bProto } = batch;
  const { icmpType: bIcmpType, icmpCode: bIcmpCode, tcpState: bTcp, flags: bFlags } = batch;
  const { origPackets, origBytes, replyPackets, replyBytes } = batch;
  let t = q.t;
  let x = q.x;
  let prev = 0;
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = cw === 1 ? (b[eConn + i] as number) : indexAt(b, eConn + cw * i, cw);
    if (v > m) throw UNUSUAL;
    const k = m - v;
    if (v === 0) m++;
    bConn[i] = k;
    const d = kw === 1 ? (b[eKind + i] as number) : indexAt(b, eKind + kw * i, kw);
    if (k >= nConn || d >= nKind) throw UNUSUAL;
    const flags = dFlags[d] as number;
    let dt: number;
    const first = t < tEnd ? (b[t] as number) : 0x100;
    const second = t + 1 < tEnd ? (b[t + 1] as number) : 0x100;
    if (first < 0x80) {
      dt = first & 1 ? -(first >> 1) : first >> 1;
      t++;
    } else if (second < 0x80) {
      const mag = ((first >> 1) & 0x3f) | (second << 6);
      dt = first & 1 ? -mag : mag;
      t += 2;
    } else {
      varintsAt(b, t);
      dt = readSv(tEnd, 'dtime');
      t = varintPos();
    }
    const time = prev + dt;
    if (time < 0 || time > MAX) throw UNUSUAL;
    prev = time;
    let f = flags & K_KERNEL ? F_KERNEL : 0;
    if (flags & K_TCP) {
      f |= F_TCP;
      bTcp[i] = dTcp[d] as number;
    }
    if (flags >= K_START) {
      varintsAt(b, x);
      if (flags & K_START) {
        const start = time - readSv(xEnd, 'startAgo');
        if (start < 0 || start > MAX) throw UNUSUAL;
        bStart[i] = start;
        f |= F_START;
      }
      if (flags & K_COUNTERS) {
        origPackets[i] = readUv(xEnd, 'counters');
        origBytes[i] = readUv(xEnd, 'counters');
        replyPackets[i] = readUv(xEnd, 'counters');
        replyBytes[i] = readUv(xEnd, 'counters');
        f |= F_COUNTERS;
      }
      if (flags & K_MARK) {
        const mark = readUv(xEnd, 'mark');
        if (mark > 0xffffffff) throw UNUSUAL;
        bMark[i] = mark;
        f |= F_MARK;
      }
      if (flags & K_ZONE) {
        const zone = readUv(xEnd, 'zone');
        if (zone > 0xffff) throw UNUSUAL;
        bZone[i] = zone;
        f |= F_ZONE;
      }
      x = varintPos();
    }
    const fam = cFam[k] as number;
    const w = fam === 4 ? w4 : w6;
    const k4 = 4 * k;
    const k6 = 6 * k;
    bType[i] = (flags & 3) + 1;
    bFamily[i] = fam;
    bProto[i] = cProto[k] as number;
    bStatus[i] = dStatus[d] as number;
    bId[i] = cId[k] as number;
    bTime[i] = time;
    const a = 16 * i;
    const s4 = 4 * (cAddr[k4] as number);
    const d4 = 4 * (cAddr[k4 + 1] as number);
    const rs4 = 4 * (cAddr[k4 + 2] as number);
    const rd4 = 4 * (cAddr[k4 + 3] as number);
    for (let z = 0; z < 4; z++) {
      addr[a + z] = w[s4 + z] as number;
      addr[a + 4 + z] = w[d4 + z] as number;
      addr[a + 8 + z] = w[rs4 + z] as number;
      addr[a + 12 + z] = w[rd4 + z] as number;
    }
    bSport[i] = cPorts[k4] as number;
    bDport[i] = cPorts[k4 + 1] as number;
    bRSport[i] = cPorts[k4 + 2] as number;
    bRDport[i] = cPorts[k4 + 3] as number;
    bIcmpType[i] = cIcmp[k6] as number;
    bIcmpCode[i] = cIcmp[k6 + 1] as number;
    bIcmpId[i] = cIcmp[k6 + 2] as number;
    bFlags[i] = f;
  }
  if (m !== nConn || t !== tEnd || x !== xEnd) throw UNUSUAL;
  batch.n = n;
}
