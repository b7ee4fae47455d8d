// NDJSON part files: one JSON object per line, column names as schema.ts, ClickHouse JSONEachRow and jq read them.
import type { CtEvent } from '../../journal/event.js';
import { type Collapse, type Flow, formatCollapse } from '../core/flows.js';
import type { ExportFiles, OutputFile } from './files.js';
import type { EventPart, FlowPart, JournalContext } from './rows.js';
import type { AddressCache, TimeText } from './values.js';

/** Bytes buffered before a write: large writes, bounded memory. */
const FLUSH_AT = 1 << 20;

/** Lines into one file through a buffer, each encoded as it comes (no long string to flatten). */
class LineFile {
  readonly #files: ExportFiles;
  readonly #file: OutputFile;
  #buf = Buffer.allocUnsafe(FLUSH_AT + 64 * 1024);
  #len = 0;
  rows = 0;

  constructor(files: ExportFiles, rel: string) {
    this.#files = files;
    this.#file = files.create(rel);
  }

  line(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (this.#len + 3 * text.length > this.#buf.length) {
      this.#flush();
      if (3 * text.length > this.#buf.length) this.#buf = Buffer.allocUnsafe(3 * text.length);
    }
    this.#len += this.#buf.write(text, this.#len);
    this.rows++;
    if (this.#len >= FLUSH_AT) this.#flush();
  }

  #flush(): void {
    if (this.#len === 0) return;
    this.#files.write(this.#file, this.#buf.subarray(0, this.#len));
    this.#len = 0;
  }

  finish(): void {
    this.#flush();
    this.#files.close(this.#file);
  }
}

const nullable = (v: number | undefined): string => (v === undefined ? 'null' : String(v));

/** Events of one journal as NDJSON lines. */
export class NdjsonEventPart implements EventPart {
  readonly #out: LineFile;
  readonly #addrs: AddressCache;
  readonly #times: TimeText;
  /** `{"host":…,"journal":…,"seq":` : the same for every line of the journal. */
  readonly #head: string;
  readonly #ports: string;

  constructor(
    files: ExportFiles,
    rel: string,
    j: JournalContext,
    addrs: AddressCache,
    times: TimeText,
  ) {
    this.#out = new LineFile(files, rel);
    this.#addrs = addrs;
    this.#times = times;
    this.#head = `{"host":${JSON.stringify(j.host)},"journal":"${j.sha256}","seq":`;
    this.#ports = `"port_lo":${j.portLo ?? 'null'},"port_hi":${j.portHi ?? 'null'}}\n`;
  }

  get rows(): number {
    return this.#out.rows;
  }

  add(ev: CtEvent, seq: number): void {
    const o = ev.orig;
    const r = ev.reply;
    const a = this.#addrs;
    const src = a.get(o.src);
    const dst = a.get(o.dst);
    const rsrc = a.get(r.src);
    const rdst = a.get(r.dst);
    const c = ev.counters;
    this.#out.line(
      `${this.#head}${seq},"time":"${this.#times.text(ev.time)}","time_us":${ev.time},` +
        `"time_kernel":${ev.timeKernel},"type":${ev.type},"family":${ev.family},"proto":${ev.proto},` +
        `"status":${ev.status},"id":${ev.id},"src":"${src.text}","dst":"${dst.text}",` +
        `"src_bin":"${src.hex}","dst_bin":"${dst.hex}","sport":${o.sport},"dport":${o.dport},` +
        `"icmp_type":${o.icmpType},"icmp_code":${o.icmpCode},"icmp_id":${o.icmpId},` +
        `"reply_src":"${rsrc.text}","reply_dst":"${rdst.text}","reply_src_bin":"${rsrc.hex}",` +
        `"reply_dst_bin":"${rdst.hex}","reply_sport":${r.sport},"reply_dport":${r.dport},` +
        `"tcp_state":${nullable(ev.tcpState)},"start_us":${nullable(ev.start)},` +
        `"mark":${nullable(ev.mark)},"zone":${nullable(ev.zone)},` +
        (c === undefined
          ? '"orig_packets":null,"orig_bytes":null,"reply_packets":null,"reply_bytes":null,'
          : `"orig_packets":${c.origPackets},"orig_bytes":${c.origBytes},"reply_packets":${c.replyPackets},"reply_bytes":${c.replyBytes},`) +
        this.#ports,
    );
  }

  finish(): void {
    this.#out.finish();
  }
}

/** Flows of one host as NDJSON lines. */
export class NdjsonFlowPart implements FlowPart {
  readonly #out: LineFile;
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
    this.#out = new LineFile(files, rel);
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
    this.#out.line(
      `${this.#host}"table":"${f.table}","family":${f.family},"proto":${f.proto},` +
        `"src":"${src.text}","dst":"${dst.text}","src_bin":"${src.hex}","dst_bin":"${dst.hex}",` +
        `"sport":${f.sport},"dport":${f.dport},"icmp_type":${f.icmpType},"icmp_code":${f.icmpCode},` +
        `"confirmed":${f.confirmed},"assured":${f.assured},` +
        `"first_seen":"${t.text(f.firstSeen)}","last_seen":"${t.text(f.lastSeen)}",` +
        `"first_us":${f.firstSeen},"last_us":${f.lastSeen},${this.#tail}`,
    );
  }

  finish(): void {
    this.#out.finish();
  }
}
