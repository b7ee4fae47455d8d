// A classic BPF interpreter with the kernel's netlink ancillary loads, and conntrack event messages
// as the kernel builds them: what recorder/bpf.ts's programs are run against without a kernel.
import type { CtEvent, Tuple } from '../../journal/event.js';
import { BPF, type BpfInsn } from '../../recorder/bpf.js';

const NLA_TYPE_MASK = ~0xc000; // NLA_F_NESTED | NLA_F_NET_BYTEORDER

/** nla_find over [at, at + len) of `p` (host byte order: little-endian here): offset or 0. */
function nlaFind(p: Uint8Array, at: number, len: number, type: number): number {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  let rem = len;
  while (rem >= 4) {
    const l = view.getUint16(at, true);
    if (l < 4 || l > rem) break;
    if ((view.getUint16(at + 2, true) & NLA_TYPE_MASK) === type) return at;
    const step = (l + 3) & ~3;
    at += step;
    rem -= step;
  }
  return 0;
}

/**
 * Runs `prog` on the datagram `p` as the kernel does for a socket filter (linear skb,
 * little-endian host): the return value, 0 when a load falls outside the packet.
 */
export function runBpf(prog: readonly BpfInsn[], p: Uint8Array): number {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const mem = new Uint32Array(BPF.MEMWORDS);
  let a = 0;
  let x = 0;
  const load = (size: number, k: number): number | undefined => {
    const n = size === BPF.W ? 4 : size === BPF.H ? 2 : 1;
    if (k < 0 || k + n > p.length) return undefined;
    return n === 4 ? view.getUint32(k) : n === 2 ? view.getUint16(k) : view.getUint8(k);
  };
  for (let pc = 0; pc < prog.length; pc++) {
    const ins = prog[pc];
    if (ins === undefined) break;
    const { code, jt, jf, k } = ins;
    const cls = code & 0x07;
    const size = code & 0x18;
    const mode = code & 0xe0;
    if (cls === BPF.LD) {
      if (mode === BPF.IMM) a = k;
      else if (mode === BPF.MEM) a = mem[k] ?? 0;
      else if (mode === BPF.ABS && k === BPF.NLATTR) {
        a = a > p.length - 4 ? 0 : nlaFind(p, a, p.length - a, x);
      } else if (mode === BPF.ABS && k === BPF.NLATTR_NEST) {
        if (a > p.length - 4) a = 0;
        else {
          const l = view.getUint16(a, true);
          a = l > p.length - a ? 0 : nlaFind(p, a + 4, l - 4, x);
        }
      } else if (mode === BPF.ABS || mode === BPF.IND) {
        const v = load(size, (mode === BPF.IND ? x : 0) + k);
        if (v === undefined) return 0;
        a = v;
      } else throw new Error(`cbpf: unsupported ld ${code.toString(16)}`);
    } else if (cls === BPF.LDX) {
      if (mode === BPF.IMM) x = k;
      else if (mode === BPF.MEM) x = mem[k] ?? 0;
      else throw new Error(`cbpf: unsupported ldx ${code.toString(16)}`);
    } else if (cls === BPF.ST) mem[k] = a;
    else if (cls === BPF.ALU && (code & 0xf0) === BPF.AND && (code & 0x08) === 0) a = (a & k) >>> 0;
    else if (cls === BPF.JMP) {
      const op = code & 0xf0;
      if (op === BPF.JA) pc += k;
      else if (op === BPF.JEQ && (code & 0x08) === 0) pc += a === k ? jt : jf;
      else if (op === BPF.JGE && (code & 0x08) === 0) pc += a >>> 0 >= k >>> 0 ? jt : jf;
      else throw new Error(`cbpf: unsupported jmp ${code.toString(16)}`);
    } else if (cls === BPF.RET && (code & 0x18) === 0) return k;
    else if (cls === BPF.MISC && (code & 0xf8) === BPF.TAX) x = a;
    else throw new Error(`cbpf: unsupported ${code.toString(16)}`);
  }
  throw new Error('cbpf: ran off the end of the program');
}

/** Netlink attributes, little-endian, as the kernel lays them out. */
class Attrs {
  readonly parts: Uint8Array[] = [];
  put(type: number, value: Uint8Array): this {
    const len = 4 + value.length;
    const out = new Uint8Array((len + 3) & ~3);
    const v = new DataView(out.buffer);
    v.setUint16(0, len, true);
    v.setUint16(2, type, true);
    out.set(value, 4);
    this.parts.push(out);
    return this;
  }
  nest(type: number, inner: Attrs): this {
    return this.put(type | 0x8000, inner.bytes());
  }
  bytes(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

const be16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);
const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);

function tuple(t: Tuple, family: 4 | 6, proto: number, zone: number | undefined): Attrs {
  const ip = new Attrs().put(family === 4 ? 1 : 3, t.src).put(family === 4 ? 2 : 4, t.dst);
  const p = new Attrs().put(1, Uint8Array.of(proto));
  if (proto === 1 || proto === 58) {
    p.put(proto === 1 ? 4 : 7, be16(t.icmpId));
    p.put(proto === 1 ? 5 : 8, Uint8Array.of(t.icmpType));
    p.put(proto === 1 ? 6 : 9, Uint8Array.of(t.icmpCode));
  } else {
    p.put(2, be16(t.sport)).put(3, be16(t.dport));
  }
  const out = new Attrs().nest(1, ip).nest(2, p);
  if (zone !== undefined) out.put(3, be16(zone));
  return out;
}

/**
 * An event message as ctnetlink multicasts it (one message per datagram): CTA_PROTOINFO when the
 * event has a TCP state, CTA_MARK when it has a mark (0 too: the kernel sends it when the mark
 * changed to 0). `flags` replaces nlmsg_flags (NLM_F_CREATE | NLM_F_EXCL on NEW, else 0).
 */
export function eventMessage(ev: CtEvent, flags?: number): Uint8Array {
  const attrs = new Attrs()
    .nest(1, tuple(ev.orig, ev.family, ev.proto, ev.zone))
    .nest(2, tuple(ev.reply, ev.family, ev.proto, ev.zone))
    .put(3, be32(ev.status))
    .put(7, be32(120));
  if (ev.tcpState !== undefined) {
    // CTA_PROTOINFO_TCP: state, both window scales, both flag pairs (tcp_to_nlattr's order).
    const tcp = new Attrs()
      .put(1, Uint8Array.of(ev.tcpState))
      .put(2, Uint8Array.of(7))
      .put(3, Uint8Array.of(7))
      .put(4, Uint8Array.of(0x23, 0x23))
      .put(5, Uint8Array.of(0x23, 0x23));
    attrs.nest(4, new Attrs().nest(1, tcp));
  }
  if (ev.mark !== undefined) attrs.put(8, be32(ev.mark));
  attrs.put(12, be32(ev.id));
  const body = attrs.bytes();
  const msg = new Uint8Array(20 + body.length);
  const v = new DataView(msg.buffer);
  v.setUint32(0, msg.length, true);
  // NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW (NEW, UPDATE) or IPCTNL_MSG_CT_DELETE
  v.setUint16(4, (1 << 8) | (ev.type === 3 ? 2 : 0), true);
  v.setUint16(6, flags ?? (ev.type === 1 ? 0x600 : 0), true); // NLM_F_CREATE | NLM_F_EXCL on NEW
  msg[16] = ev.family === 4 ? 2 : 10;
  msg.set(body, 20);
  return msg;
}

/** A netlink message of `type` with a payload, e.g. NLMSG_ERROR (2) or an overrun notice. */
export function plainMessage(type: number, payload: Uint8Array = new Uint8Array(4)): Uint8Array {
  const msg = new Uint8Array(16 + payload.length);
  const v = new DataView(msg.buffer);
  v.setUint32(0, msg.length, true);
  v.setUint16(4, type, true);
  msg.set(payload, 16);
  return msg;
}
