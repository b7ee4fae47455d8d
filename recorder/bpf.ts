// The recorder's event filter as a classic BPF socket filter, so the kernel drops what it leaves out.
//
// The program runs on each datagram of the event socket: one conntrack event message each (the
// kernel sends one message per multicast skb). It finds attributes with the NLATTR / NLATTR_NEST
// ancillary loads (the kernel walks the attributes), as libnetfilter_conntrack's
// nfct_filter_attach does. Anything it cannot judge passes (NLMSG_ERROR, overrun notices, other
// subsystems or families, a message lacking the original tuple): user space then skips it or
// counts it as malformed, exactly as without the filter. Its verdict equals compileFilter's
// predicate for every event the parser accepts (test/recorder/bpf.test.ts runs it in an
// interpreter against generated messages).
//
// With -e minimal it also drops, before the filter, the UPDATEs that recorder/diet.ts could only
// keep as an entry's first event in the journal (the rule is at dietRule; docs/record.md, "Fewer
// events, the same flows", says what that changes).
import { endianness } from 'node:os';
import type { Cidr } from '../analyzer/core/prefix.js';
import type { EventFilter } from './filter.js';

/** One classic BPF instruction (struct sock_filter). */
export interface BpfInsn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// linux/filter.h and linux/bpf_common.h
export const BPF = {
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  W: 0x00,
  H: 0x08,
  B: 0x10,
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  AND: 0x50,
  JA: 0x00,
  JEQ: 0x10,
  JGE: 0x30,
  K: 0x00,
  TAX: 0x00,
  /** SKF_AD_OFF + SKF_AD_NLATTR: A = offset of attribute X in the attributes starting at A. */
  NLATTR: (0x1_0000_0000 - 0x1000 + 12) >>> 0,
  /** SKF_AD_OFF + SKF_AD_NLATTR_NEST: A = offset of attribute X inside the nest at offset A. */
  NLATTR_NEST: (0x1_0000_0000 - 0x1000 + 16) >>> 0,
  /** BPF_MAXINSNS: the kernel refuses longer programs. */
  MAXINSNS: 4096,
  /** Scratch memory cells M[0..15]. */
  MEMWORDS: 16,
} as const;

/** What the program returns: the whole datagram, or nothing (dropped). */
export const ACCEPT = 0xffffffff;
export const REJECT = 0;

// linux/netlink.h, linux/netfilter/nfnetlink*.h
const NLMSG_TYPE_OFFSET = 4; // u16, host byte order
const NLMSG_FLAGS_OFFSET = 6; // u16, host byte order
const NLM_F_MULTI = 0x2; // a dump's reply
const NLM_F_CREATE = 0x400;
const NLM_F_EXCL = 0x200;
const NFGEN_FAMILY_OFFSET = 16; // after the 16-byte nlmsghdr
const ATTRS_OFFSET = 20; // nlmsghdr + nfgenmsg
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0; // NEW and UPDATE events
const IPCTNL_MSG_CT_DELETE = 2; // DESTROY events
const AF_INET = 2;
const AF_INET6 = 10;
const CTA_TUPLE_ORIG = 1;
const CTA_STATUS = 3;
const CTA_PROTOINFO = 4;
const CTA_MARK = 8;
const CTA_PROTOINFO_TCP = 1;
const CTA_PROTOINFO_TCP_STATE = 1;
const IPS_SEEN_REPLY = 0x2;
const IPS_ASSURED = 0x4;
/** enum tcp_conntrack: FIN_WAIT and every state after it (CLOSE_WAIT, LAST_ACK, TIME_WAIT, …). */
const TCP_CONNTRACK_FIN_WAIT = 4;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const NLA_HDRLEN = 4;

// Scratch cells.
const M_ORIG = 0;
const M_SRC = 1;
const M_DST = 2;

type Label = { readonly name: string };
type Target = Label | null; // null: the next instruction
type Item =
  | { kind: 'insn'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; t: Target; f: Target }
  | { kind: 'ja'; to: Label }
  | { kind: 'label'; label: Label };

/** A tiny assembler: straight-line code with forward jumps to labels. */
class Asm {
  readonly items: Item[] = [];
  #labels = 0;
  label(name: string): Label {
    return { name: `${name}.${this.#labels++}` };
  }
  at(label: Label): void {
    this.items.push({ kind: 'label', label });
  }
  op(code: number, k = 0): void {
    this.items.push({ kind: 'insn', code, k: k >>> 0 });
  }
  jeq(k: number, t: Target, f: Target): void {
    this.items.push({ kind: 'jump', code: BPF.JMP | BPF.JEQ | BPF.K, k: k >>> 0, t, f });
  }
  /** Unsigned A >= k. */
  jge(k: number, t: Target, f: Target): void {
    this.items.push({ kind: 'jump', code: BPF.JMP | BPF.JGE | BPF.K, k: k >>> 0, t, f });
  }
  ja(to: Label): void {
    this.items.push({ kind: 'ja', to });
  }
  ret(k: number): void {
    this.op(BPF.RET | BPF.K, k);
  }

  /**
   * Instructions with every label resolved. jt/jf are 8-bit: when the program has more than
   * 256 instructions, each conditional jump to a label goes through a JA (32-bit offset) beside it.
   */
  assemble(): BpfInsn[] {
    const short = this.items.filter((i) => i.kind !== 'label').length <= 256;
    const size = (i: Item) =>
      i.kind === 'label'
        ? 0
        : i.kind === 'jump' && !short
          ? 1 + (i.t === null ? 0 : 1) + (i.f === null ? 0 : 1)
          : 1;
    const where = new Map<string, number>();
    let pc = 0;
    for (const i of this.items) {
      if (i.kind === 'label') where.set(i.label.name, pc);
      pc += size(i);
    }
    const to = (l: Label) => {
      const at = where.get(l.name);
      if (at === undefined) throw new Error(`bpf: label ${l.name} is never placed`);
      return at;
    };
    const out: BpfInsn[] = [];
    for (const i of this.items) {
      const here = out.length;
      if (i.kind === 'insn') out.push({ code: i.code, jt: 0, jf: 0, k: i.k });
      else if (i.kind === 'ja') {
        out.push({ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: to(i.to) - here - 1 });
      } else if (i.kind === 'jump' && short) {
        const off = (t: Target) => (t === null ? 0 : to(t) - here - 1);
        out.push({ code: i.code, jt: off(i.t), jf: off(i.f), k: i.k });
      } else if (i.kind === 'jump') {
        // jcond; [ja t]; [ja f]: the condition only chooses which JA (or the next item) runs.
        const stubs = [i.t, i.f].filter((x): x is Label => x !== null);
        const jt = i.t === null ? stubs.length : 0;
        const jf = i.f === null ? stubs.length : i.t === null ? 0 : 1;
        out.push({ code: i.code, jt, jf, k: i.k });
        for (const s of stubs)
          out.push({ code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: to(s) - out.length - 1 });
      }
    }
    for (const [n, ins] of out.entries()) {
      if ((ins.code & 0x07) !== BPF.JMP) continue;
      const far = ins.code === (BPF.JMP | BPF.JA) ? ins.k : Math.max(ins.jt, ins.jf);
      if (ins.jt > 255 || ins.jf > 255 || far < 0 || n + 1 + far >= out.length) {
        throw new Error(`bpf: jump out of range at ${n}`);
      }
    }
    return out;
  }
}

/** A 16-bit nlmsghdr field as BPF_H loads it: network byte order applied to a host-order field. */
function loaded16(value: number, le: boolean): number {
  return le ? ((value & 0xff) << 8) | (value >> 8) : value;
}

/** The prefix's mask and network as 32-bit words, most significant first. */
function cidrWords(c: Cidr): { mask: number; net: number }[] {
  const words = c.family === 4 ? 1 : 4;
  const out: { mask: number; net: number }[] = [];
  for (let w = 0; w < words; w++) {
    const shift = BigInt((words - 1 - w) * 32);
    const bitsBefore = w * 32;
    const take = Math.max(0, Math.min(32, c.prefix - bitsBefore));
    const mask = take === 0 ? 0 : (0xffffffff << (32 - take)) >>> 0;
    out.push({ mask, net: Number((c.network >> shift) & 0xffffffffn) & mask });
  }
  return out;
}

/** What the program does besides the filter. */
export interface KernelRules {
  /** -e minimal: drop the UPDATEs that can add nothing to the flow table (dietRule). */
  diet?: boolean;
}

/** Whether the filter leaves anything out (no filter: no program). */
export function filters(f: EventFilter): boolean {
  return (
    f.protos !== undefined ||
    f.mark !== undefined ||
    f.noLoopback === true ||
    f.src !== undefined ||
    f.dst !== undefined
  );
}

/**
 * The socket filter for `f` (and `rules`), or undefined when it keeps everything. `byteOrder` is
 * the host's (netlink headers are in host order).
 */
export function compileBpf(
  f: EventFilter,
  rules: KernelRules = {},
  byteOrder: 'LE' | 'BE' = endianness(),
): BpfInsn[] | undefined {
  if (!filters(f) && rules.diet !== true) return undefined;
  const le = byteOrder === 'LE';
  const a = new Asm();
  const accept = a.label('accept');
  const drop = a.label('drop');
  const event = a.label('event');
  const ldAbs = (size: number, k: number) => a.op(BPF.LD | size | BPF.ABS, k);
  const ldInd = (size: number, k: number) => a.op(BPF.LD | size | BPF.IND, k);
  /** A = offset of attribute `type` in the nest at offset A; not found → `missing`. */
  const nest = (type: number, missing: Label) => {
    a.op(BPF.LDX | BPF.W | BPF.IMM, type);
    ldAbs(BPF.W, BPF.NLATTR_NEST);
    a.jeq(0, missing, null);
  };

  // Only conntrack NEW/UPDATE/DESTROY events are judged; every other message passes.
  ldAbs(BPF.H, NLMSG_TYPE_OFFSET);
  a.jeq(loaded16((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, le), event, null);
  a.jeq(loaded16((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, le), event, accept);
  a.at(event);
  // Families other than IPv4 and IPv6 pass: the parser skips them.
  const family = a.label('family-ok');
  ldAbs(BPF.B, NFGEN_FAMILY_OFFSET);
  a.jeq(AF_INET, family, null);
  a.jeq(AF_INET6, family, accept);
  a.at(family);
  // M[ORIG] = the original tuple; a message without one is the parser's to count as malformed.
  a.op(BPF.LD | BPF.W | BPF.IMM, ATTRS_OFFSET);
  a.op(BPF.LDX | BPF.W | BPF.IMM, CTA_TUPLE_ORIG);
  ldAbs(BPF.W, BPF.NLATTR);
  a.jeq(0, accept, null);
  a.op(BPF.ST, M_ORIG);

  if (rules.diet === true) {
    const judged = a.label('diet-judged');
    dietRule(a, le, judged, drop);
    a.at(judged);
    a.op(BPF.LD | BPF.MEM, M_ORIG); // the filter below starts from the original tuple in A
  }

  if (f.protos !== undefined) {
    const ok = a.label('proto-ok');
    nest(CTA_TUPLE_PROTO, accept);
    nest(CTA_PROTO_NUM, accept);
    a.op(BPF.MISC | BPF.TAX);
    ldInd(BPF.B, NLA_HDRLEN);
    for (const p of f.protos) a.jeq(p, ok, null);
    a.ja(drop);
    a.at(ok);
  }

  if (f.mark !== undefined) {
    const none = a.label('mark-none');
    const check = a.label('mark-check');
    // CTA_MARK is a top-level attribute, sent only when the mark is not 0.
    a.op(BPF.LD | BPF.W | BPF.IMM, ATTRS_OFFSET);
    a.op(BPF.LDX | BPF.W | BPF.IMM, CTA_MARK);
    ldAbs(BPF.W, BPF.NLATTR);
    a.jeq(0, none, null);
    a.op(BPF.MISC | BPF.TAX);
    ldInd(BPF.W, NLA_HDRLEN);
    a.ja(check);
    a.at(none);
    a.op(BPF.LD | BPF.W | BPF.IMM, 0);
    a.at(check);
    a.op(BPF.ALU | BPF.AND | BPF.K, f.mark.mask);
    a.jeq(f.mark.value, null, drop);
  }

  if (f.noLoopback === true || f.src !== undefined || f.dst !== undefined) {
    const v4 = a.label('v4');
    const v6 = a.label('v6');
    ldAbs(BPF.B, NFGEN_FAMILY_OFFSET);
    a.jeq(AF_INET, v4, null);
    a.ja(v6); // the only other family left
    for (const family of [4, 6] as const) {
      a.at(family === 4 ? v4 : v6);
      const [srcType, dstType] =
        family === 4 ? [CTA_IP_V4_SRC, CTA_IP_V4_DST] : [CTA_IP_V6_SRC, CTA_IP_V6_DST];
      // M[SRC], M[DST] = the original tuple's address attributes.
      a.op(BPF.LD | BPF.MEM, M_ORIG);
      nest(CTA_TUPLE_IP, accept);
      a.op(BPF.ST, 3);
      nest(srcType, accept);
      a.op(BPF.ST, M_SRC);
      a.op(BPF.LD | BPF.MEM, 3);
      nest(dstType, accept);
      a.op(BPF.ST, M_DST);
      if (f.noLoopback === true) {
        for (const cell of [M_SRC, M_DST]) {
          a.op(BPF.LDX | BPF.W | BPF.MEM, cell);
          if (family === 4) {
            ldInd(BPF.B, NLA_HDRLEN);
            a.jeq(127, drop, null);
          } else {
            const not = a.label('not-loopback');
            for (let w = 0; w < 4; w++) {
              ldInd(BPF.W, NLA_HDRLEN + 4 * w);
              if (w < 3) a.jeq(0, null, not);
              else a.jeq(1, drop, null);
            }
            a.at(not);
          }
        }
      }
      for (const [cell, list] of [
        [M_SRC, f.src],
        [M_DST, f.dst],
      ] as const) {
        if (list === undefined) continue;
        const matched = a.label('cidr-ok');
        for (const c of list.filter((c) => c.family === family)) {
          const next = a.label('cidr-next');
          a.op(BPF.LDX | BPF.W | BPF.MEM, cell);
          for (const [w, { mask, net }] of cidrWords(c).entries()) {
            if (mask === 0) continue;
            ldInd(BPF.W, NLA_HDRLEN + 4 * w);
            if (mask !== 0xffffffff) a.op(BPF.ALU | BPF.AND | BPF.K, mask);
            a.jeq(net, null, next);
          }
          a.ja(matched);
          a.at(next);
        }
        a.ja(drop); // several prefixes are ORed; none of this family holds the address
        a.at(matched);
      }
      a.ja(accept);
    }
  }

  a.at(accept);
  a.ret(ACCEPT);
  a.at(drop);
  a.ret(REJECT);
  return a.assemble();
}

/**
 * The event diet's stateless part (recorder/diet.ts): an UPDATE (IPCTNL_MSG_CT_NEW without both
 * NLM_F_CREATE and NLM_F_EXCL: native/parse.cc's test; nor NLM_F_MULTI, a dump's reply) whose
 * CTA_STATUS has IPS_SEEN_REPLY and IPS_ASSURED, whose TCP state is FIN_WAIT or later and that
 * carries no mark (no CTA_MARK, or 0) goes to `drop`; anything else, or anything it cannot read,
 * to `judged`. Such an UPDATE adds no flag: TCP sets IPS_ASSURED only on the way into
 * ESTABLISHED, so an earlier UPDATE of the entry carried both bits. The diet in user space would
 * still keep it as its entry's first event in the journal; the kernel cannot know that.
 */
function dietRule(a: Asm, le: boolean, judged: Label, drop: Label): void {
  const ldAbs = (size: number, k: number) => a.op(BPF.LD | size | BPF.ABS, k);
  const ldInd = (size: number, k: number) => a.op(BPF.LD | size | BPF.IND, k);
  /** A = offset of the top-level attribute `type`; absent → `missing`. */
  const top = (type: number, missing: Label) => {
    a.op(BPF.LD | BPF.W | BPF.IMM, ATTRS_OFFSET);
    a.op(BPF.LDX | BPF.W | BPF.IMM, type);
    ldAbs(BPF.W, BPF.NLATTR);
    a.jeq(0, missing, null);
  };
  // DESTROY is judged by the filter alone.
  ldAbs(BPF.H, NLMSG_TYPE_OFFSET);
  a.jeq(loaded16((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, le), null, judged);
  const created = loaded16(NLM_F_CREATE | NLM_F_EXCL, le);
  ldAbs(BPF.H, NLMSG_FLAGS_OFFSET);
  a.op(BPF.ALU | BPF.AND | BPF.K, created);
  a.jeq(created, judged, null);
  ldAbs(BPF.H, NLMSG_FLAGS_OFFSET);
  a.op(BPF.ALU | BPF.AND | BPF.K, loaded16(NLM_F_MULTI, le));
  a.jeq(0, null, judged);
  // Network byte order payloads (nla_put_be32): BPF_W loads big-endian, so A is the value.
  const flags = IPS_SEEN_REPLY | IPS_ASSURED;
  top(CTA_STATUS, judged);
  a.op(BPF.MISC | BPF.TAX);
  ldInd(BPF.W, NLA_HDRLEN);
  a.op(BPF.ALU | BPF.AND | BPF.K, flags);
  a.jeq(flags, null, judged);
  // The kernel sends CTA_MARK when the mark is not 0 or has just changed (to 0, possibly).
  const unmarked = a.label('diet-unmarked');
  top(CTA_MARK, unmarked);
  a.op(BPF.MISC | BPF.TAX);
  ldInd(BPF.W, NLA_HDRLEN);
  a.jeq(0, null, judged);
  a.at(unmarked);
  // CTA_PROTOINFO comes only with a state change; other protocols have no CTA_PROTOINFO_TCP.
  top(CTA_PROTOINFO, judged);
  a.op(BPF.LDX | BPF.W | BPF.IMM, CTA_PROTOINFO_TCP);
  ldAbs(BPF.W, BPF.NLATTR_NEST);
  a.jeq(0, judged, null);
  a.op(BPF.LDX | BPF.W | BPF.IMM, CTA_PROTOINFO_TCP_STATE);
  ldAbs(BPF.W, BPF.NLATTR_NEST);
  a.jeq(0, judged, null);
  a.op(BPF.MISC | BPF.TAX);
  ldInd(BPF.B, NLA_HDRLEN);
  a.jge(TCP_CONNTRACK_FIN_WAIT, drop, judged);
}

/** struct sock_filter[] in host byte order, as SO_ATTACH_FILTER takes it. */
export function packBpf(
  prog: readonly BpfInsn[],
  byteOrder: 'LE' | 'BE' = endianness(),
): Uint8Array {
  const out = new Uint8Array(prog.length * 8);
  const view = new DataView(out.buffer);
  const le = byteOrder === 'LE';
  for (const [i, ins] of prog.entries()) {
    view.setUint16(i * 8, ins.code, le);
    view.setUint8(i * 8 + 2, ins.jt);
    view.setUint8(i * 8 + 3, ins.jf);
    view.setUint32(i * 8 + 4, ins.k >>> 0, le);
  }
  return out;
}

/** Where the recording's filter runs. */
export type KernelFilterState =
  /** No filter given: every event is recorded. */
  | { where: 'none' }
  /** --no-kernel-filter: the filter runs in user space only. */
  | { where: 'user' }
  /** The socket filter is attached: events it rejects are never read. */
  | { where: 'kernel'; instructions: number; diet?: boolean }
  /** The kernel refused it (or it could not be built): user space filters every event. */
  | { where: 'fallback'; reason: string };

/**
 * The program to attach for `f` and `rules` (packed for SO_ATTACH_FILTER), or why none: `enabled`
 * false is --no-kernel-filter.
 */
export function planKernelFilter(
  f: EventFilter,
  enabled: boolean,
  rules: KernelRules = {},
): { program: Uint8Array; instructions: number } | KernelFilterState {
  if (!filters(f) && rules.diet !== true) return { where: 'none' };
  if (!enabled) return { where: 'user' };
  try {
    const prog = compileBpf(f, rules);
    if (prog === undefined) return { where: 'none' };
    if (prog.length > BPF.MAXINSNS) {
      return {
        where: 'fallback',
        reason: `the filter needs ${prog.length} BPF instructions, more than the kernel's ${BPF.MAXINSNS}`,
      };
    }
    return { program: packBpf(prog), instructions: prog.length };
  } catch (err) {
    return { where: 'fallback', reason: err instanceof Error ? err.message : String(err) };
  }
}

/** The one line ct-record logs about it at start: info when in the kernel, a warning on fallback. */
export function kernelFilterLine(
  s: KernelFilterState,
): { level: 'info' | 'warn'; text: string } | undefined {
  switch (s.where) {
    case 'none':
      return undefined;
    case 'user':
      return {
        level: 'info',
        text: 'filter: in user space (--no-kernel-filter): every event is read, then left out or kept',
      };
    case 'kernel':
      return {
        level: 'info',
        text: `filter: in the kernel (a ${s.instructions}-instruction socket filter): events it leaves out${s.diet === true ? " (with -e minimal's: closing TCP UPDATEs that add no flag)" : ''} are never read, nor counted`,
      };
    case 'fallback':
      return {
        level: 'warn',
        // The cost: bench/filtered.sh, user against kernel mode (docs/bench.md).
        text: `cannot filter in the kernel (${s.reason}): filtering in user space instead, which reads every event first: about 2 µs of CPU per event left out (a fifth of a core at 100k events/s), and the events left out can overrun the receive buffer`,
      };
  }
}
