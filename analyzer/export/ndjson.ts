// NDJSON part files: one JSON object per line, column names as schema.ts, ClickHouse JSONEachRow and jq read them.
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import { type ExportBatch, F_COUNTERS, F_KERNEL, F_MARK, F_START, F_TCP, F_ZONE } from './batch.js';
import type { ExportFiles, OutputFile } from './files.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import type { AddressCache, TimeText } from './values.js';

/** Bytes buffered before a write: large writes, bounded memory. */
const FLUSH_AT = 1 << 20;
/** Room left for one line: no event line comes near it (the host name is at most 255 bytes). */
const LINE_MAX = 64 * 1024;

/** Plain Uint8Arrays (not Buffers): every array raw() copies has one shape, which keeps it fast. */
const ascii = (s: string) => Uint8Array.from(Buffer.from(s, 'latin1'));
const K = {
  time: ascii(',"time":"'),
  timeUs: ascii('Z","time_us":'),
  kernelTrue: ascii(',"time_kernel":true,"type":'),
  kernelFalse: ascii(',"time_kernel":false,"type":'),
  family: ascii(',"family":'),
  proto: ascii(',"proto":'),
  status: ascii(',"status":'),
  id: ascii(',"id":'),
  src: ascii(',"src":"'),
  dst: ascii('","dst":"'),
  srcBin: ascii('","src_bin":"'),
  dstBin: ascii('","dst_bin":"'),
  sport: ascii('","sport":'),
  dport: ascii(',"dport":'),
  icmpType: ascii(',"icmp_type":'),
  icmpCode: ascii(',"icmp_code":'),
  icmpId: ascii(',"icmp_id":'),
  replySrc: ascii(',"reply_src":"'),
  replyDst: ascii('","reply_dst":"'),
  replySrcBin: ascii('","reply_src_bin":"'),
  replyDstBin: ascii('","reply_dst_bin":"'),
  replySport: ascii('","reply_sport":'),
  replyDport: ascii(',"reply_dport":'),
  tcpState: ascii(',"tcp_state":'),
  startUs: ascii(',"start_us":'),
  mark: ascii(',"mark":'),
  zone: ascii(',"zone":'),
  origPackets: ascii(',"orig_packets":'),
  origBytes: ascii(',"orig_bytes":'),
  replyPackets: ascii(',"reply_packets":'),
  replyBytes: ascii(',"reply_bytes":'),
  noCounters: ascii(
    ',"orig_packets":null,"orig_bytes":null,"reply_packets":null,"reply_bytes":null',
  ),
  null: ascii('null'),
};

/**
 * Bytes into one file through a buffer, written in place (digits, cached address and time
 * bytes): an event line costs no string, which is what makes NDJSON keep up with the reader.
 */
class ByteFile {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  buf = new Uint8Array(FLUSH_AT + LINE_MAX);
  pos = 0;
  readonly #digits = new Uint8Array(24);
  rows = 0;

  constructor(files: ExportFiles, rel: string) {
    this.#files = files;
    this.#file = files.create(rel);
  }

  /** Ends a row: flushes when the buffer is full enough. */
  endRow(): void {
    this.rows++;
    if (this.pos >= FLUSH_AT) this.#flush();
  }

  raw(b: Uint8Array): void {
    // A native copy: faster than a byte loop even for a 10-byte key, measured.
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A non-negative integer up to 2^53 in decimal. */
  uint(n: number): void {
    const buf = this.buf;
    if (n < 10) {
      buf[this.pos++] = 48 + n;
      return;
    }
    const d = this.#digits;
    let k = 0;
    while (n >= 10) {
      const q = Math.floor(n / 10);
      d[k++] = 48 + (n - q * 10);
      n = q;
    }
    d[k++] = 48 + n;
    let p = this.pos;
    while (k > 0) buf[p++] = d[--k] as number;
    this.pos = p;
  }

  /** Exactly six digits (a time's fraction). */
  six(n: number): void {
    const buf = this.buf;
    const p = this.pos;
    for (let i = 5; i >= 0; i--) {
      const q = Math.floor(n / 10);
      buf[p + i] = 48 + (n - q * 10);
      n = q;
    }
    this.pos = p + 6;
  }

  /** A string line (flows: few rows). */
  text(s: string): void {
    this.raw(Uint8Array.from(Buffer.from(s, 'utf8')));
  }

  #flush(): void {
    if (this.pos === 0) return;
    this.#files.write(this.#file, this.buf.subarray(0, this.pos));
    this.pos = 0;
  }

  finish(): void {
    this.#flush();
    this.#files.close(this.#file);
  }
}

/** Events of one journal as NDJSON lines. */
export class NdjsonEventPart implements EventPart {
  readonly #out: ByteFile;
  readonly #addrs: AddressCache;
  readonly #times: TimeText;
  /** `{"host":…,"journal":…,"seq":` : the same for every line of the journal. */
  readonly #head: Uint8Array;
  readonly #tail: Uint8Array;

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    times: TimeText,
  ) {
    this.#out = new ByteFile(files, rel);
    this.#addrs = addrs;
    this.#times = times;
    this.#head = Uint8Array.from(
      Buffer.from(`{"host":${JSON.stringify(j.host)},"journal":"${j.sha256}","seq":`),
    );
    this.#tail = ascii(`,"port_lo":${j.portLo ?? 'null'},"port_hi":${j.portHi ?? 'null'}}\n`);
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(b: ExportBatch, i: number, seq: number): void {
    const a = this.#addrs;
    const len = b.family[i] === 4 ? 4 : 16;
    const at = 16 * i;
    const src = a.words(b.addr, at, len);
    const dst = a.words(b.addr, at + 4, len);
    const rsrc = a.words(b.addr, at + 8, len);
    const rdst = a.words(b.addr, at + 12, len);
    const flags = b.flags[i] as number;
    const w = this.#out;
    w.raw(this.#head);
    w.uint(seq);
    w.raw(K.time);
    const time = b.time[i] as number;
    w.raw(this.#times.prefixBytes(time));
    w.six(time % 1e6);
    w.raw(K.timeUs);
    w.uint(time);
    w.raw(flags & F_KERNEL ? K.kernelTrue : K.kernelFalse);
    w.uint(b.type[i] as number);
    w.raw(K.family);
    w.uint(b.family[i] as number);
    w.raw(K.proto);
    w.uint(b.proto[i] as number);
    w.raw(K.status);
    w.uint(b.status[i] as number);
    w.raw(K.id);
    w.uint(b.id[i] as number);
    w.raw(K.src);
    w.raw(src.textBytes);
    w.raw(K.dst);
    w.raw(dst.textBytes);
    w.raw(K.srcBin);
    w.raw(src.hexBytes);
    w.raw(K.dstBin);
    w.raw(dst.hexBytes);
    w.raw(K.sport);
    w.uint(b.sport[i] as number);
    w.raw(K.dport);
    w.uint(b.dport[i] as number);
    w.raw(K.icmpType);
    w.uint(b.icmpType[i] as number);
    w.raw(K.icmpCode);
    w.uint(b.icmpCode[i] as number);
    w.raw(K.icmpId);
    w.uint(b.icmpId[i] as number);
    w.raw(K.replySrc);
    w.raw(rsrc.textBytes);
    w.raw(K.replyDst);
    w.raw(rdst.textBytes);
    w.raw(K.replySrcBin);
    w.raw(rsrc.hexBytes);
    w.raw(K.replyDstBin);
    w.raw(rdst.hexBytes);
    w.raw(K.replySport);
    w.uint(b.replySport[i] as number);
    w.raw(K.replyDport);
    w.uint(b.replyDport[i] as number);
    w.raw(K.tcpState);
    if (flags & F_TCP) w.uint(b.tcpState[i] as number);
    else w.raw(K.null);
    w.raw(K.startUs);
    if (flags & F_START) w.uint(b.start[i] as number);
    else w.raw(K.null);
    w.raw(K.mark);
    if (flags & F_MARK) w.uint(b.mark[i] as number);
    else w.raw(K.null);
    w.raw(K.zone);
    if (flags & F_ZONE) w.uint(b.zone[i] as number);
    else w.raw(K.null);
    if (flags & F_COUNTERS) {
      w.raw(K.origPackets);
      w.uint(b.origPackets[i] as number);
      w.raw(K.origBytes);
      w.uint(b.origBytes[i] as number);
      w.raw(K.replyPackets);
      w.uint(b.replyPackets[i] as number);
      w.raw(K.replyBytes);
      w.uint(b.replyBytes[i] as number);
    } else w.raw(K.noCounters);
    w.raw(this.#tail);
    w.endRow();
  }

  async ready(): Promise<void> {}

  async finish(): Promise<void> {
    this.#out.finish();
  }
}

/** Flows of one host as NDJSON lines. */
export class NdjsonFlowPart implements FlowPart {
  readonly #out: ByteFile;
  readonly #addrs: AddressCache;
  readonly #times: TimeText;
  readonly #host: string;
  readonly #tail: string;

  constructor(
    files: ExportFiles,
    rel: string,
    host: string,
    collapse: Collapse,
    addrs: AddressCache,
    times: TimeText,
  ) {
    this.#out = new ByteFile(files, rel);
    this.#addrs = addrs;
    this.#times = times;
    this.#host = `{"host":${JSON.stringify(host)},`;
    this.#tail = `"collapse":${JSON.stringify(formatCollapse(collapse))}}\n`;
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(f: Flow): void {
    const src = this.#addrs.get(f.src);
    const dst = this.#addrs.get(f.dst);
    const t = this.#times;
    const hex = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    this.#out.text(
      `${this.#host}"table":"${f.table}","family":${f.family},"proto":${f.proto},` +
        `"src":"${src.text}","dst":"${dst.text}","src_bin":"${hex(src.hexBytes)}","dst_bin":"${hex(dst.hexBytes)}",` +
        `"sport":${f.sport},"dport":${f.dport},"icmp_type":${f.icmpType},"icmp_code":${f.icmpCode},` +
        `"confirmed":${f.confirmed},"assured":${f.assured},` +
        `"first_seen":"${t.text(f.firstSeen)}","last_seen":"${t.text(f.lastSeen)}",` +
        `"first_us":${f.firstSeen},"last_us":${f.lastSeen},${this.#tail}`,
    );
    this.#out.endRow();
  }

  async finish(): Promise<void> {
    this.#out.finish();
  }
}
