// ct-analyze check: what nft's JSON expressions (payload, meta, ct, fib, bitwise) read from a packet and a walk's marks.
import type { IndexField, Marks, Packet } from './model.js';
import { isObj } from './sets.js';
import {
  ABSENT,
  addressKey,
  exact,
  type LVal,
  parseAtom,
  type Scalar,
  UNKNOWN,
  type ValueKind,
} from './values.js';

/** A packet field as a match reads it: how its values are written, and its value for a packet. */
export interface Field {
  readonly kind: ValueKind;
  get(p: Packet, marks: Marks): LVal;
  /** The index field when the expression is exactly that packet field. */
  readonly index?: IndexField;
  /** False when the expression is beyond the evaluator: every match on it is unknown. */
  readonly known: boolean;
}

const CT_STATE_BIT = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 } as const;
const PORT_PROTOS = new Set([6, 17, 33, 132, 136]);
const L4: Record<string, number> = { tcp: 6, udp: 17, dccp: 33, sctp: 132, udplite: 136 };
const IPS_NAT = 0x10 | 0x20;
const U32 = 0xffffffff;

const unknownField = (kind: ValueKind = 'number'): Field => ({
  kind,
  get: () => UNKNOWN,
  known: false,
});

function port(r: { readonly from: number; readonly to: number }): LVal {
  return r.from === r.to ? exact(r.from) : { t: 'range', from: r.from, to: r.to };
}

/**
 * The last few addresses read, by identity: a connection's packets share their four or so
 * address arrays, and each flow brings new ones, so a WeakMap would mostly grow (and cost the
 * collector) where a small ring answers nearly every read.
 */
const RING = 8;
const ringKeys: (Uint8Array | undefined)[] = new Array(RING).fill(undefined);
const ringVals: LVal[] = new Array(RING).fill(UNKNOWN);
let ringNext = 0;
function addr(b: Uint8Array): LVal {
  for (let i = 0; i < RING; i++) if (ringKeys[i] === b) return ringVals[i] as LVal;
  const v = exact(addressKey(b));
  ringKeys[ringNext] = b;
  ringVals[ringNext] = v;
  ringNext = (ringNext + 1) % RING;
  return v;
}

/** The field a JSON expression reads; unknownField for what the evaluator cannot read. */
export function field(e: unknown): Field {
  if (!isObj(e)) return unknownField();
  if (isObj(e.payload)) return payloadField(String(e.payload.protocol), String(e.payload.field));
  if (isObj(e.meta)) return metaField(String(e.meta.key));
  if (isObj(e.ct)) return ctField(e.ct);
  if (isObj(e.fib)) return fibField(e.fib);
  if (isObj(e.exthdr)) return exthdrField(e.exthdr);
  for (const op of ['&', '|', '^', '<<', '>>'] as const) {
    const args = e[op];
    if (Array.isArray(args) && args.length === 2) return bitwise(op, field(args[0]), args[1]);
  }
  return unknownField();
}

function payloadField(protocol: string, name: string): Field {
  const fam = protocol === 'ip' ? 4 : protocol === 'ip6' ? 6 : undefined;
  if (fam !== undefined) {
    const other = (p: Packet) => p.family !== fam;
    if (name === 'saddr' || name === 'daddr') {
      return {
        kind: fam === 4 ? 'addr4' : 'addr6',
        // One function per field (not p[name]): the walk reads addresses more than anything.
        get:
          name === 'saddr'
            ? (p) => (p.family !== fam ? ABSENT : addr(p.saddr))
            : (p) => (p.family !== fam ? ABSENT : addr(p.daddr)),
        index: name,
        known: true,
      };
    }
    if (name === 'protocol' || name === 'nexthdr') {
      // ip6 nexthdr is the layer-4 protocol unless extension headers sit between.
      return {
        kind: 'proto',
        get: (p) => (other(p) ? ABSENT : exact(p.proto)),
        index: 'proto',
        known: true,
      };
    }
    if (name === 'version')
      return { kind: 'number', get: (p) => (other(p) ? ABSENT : exact(fam)), known: true };
    if (fam === 4 && name === 'frag-off') {
      // conntrack reassembles before any chain sees the packet: no offset, no more-fragments;
      // only DF (0x4000) is not known.
      return {
        kind: 'number',
        get: (p) => (other(p) ? ABSENT : { t: 'bits', v: 0, known: U32 & ~0x4000 }),
        known: true,
      };
    }
    return { kind: 'number', get: (p) => (other(p) ? ABSENT : UNKNOWN), known: true };
  }
  const l4 = L4[protocol];
  if (l4 !== undefined) {
    if (name === 'sport' || name === 'dport') {
      return {
        kind: 'number',
        get: (p) => (p.proto !== l4 ? ABSENT : port(p[name])),
        index: name === 'dport' ? 'dport' : undefined,
        known: true,
      };
    }
    if (l4 === 6 && name === 'flags') {
      return {
        kind: 'tcpflags',
        get: (p) =>
          p.proto !== 6 ? ABSENT : p.tcpFlags === undefined ? UNKNOWN : exact(p.tcpFlags),
        known: true,
      };
    }
    return { kind: 'number', get: (p) => (p.proto !== l4 ? ABSENT : UNKNOWN), known: true };
  }
  if (protocol === 'th' && (name === 'sport' || name === 'dport')) {
    // th reads the first bytes of any transport header: ports only where there are ports.
    return {
      kind: 'number',
      get: (p) => (PORT_PROTOS.has(p.proto) ? port(p[name]) : UNKNOWN),
      known: true,
    };
  }
  if (protocol === 'icmp' || protocol === 'icmpv6') {
    const [fam4, proto] = protocol === 'icmp' ? [4, 1] : [6, 58];
    const other = (p: Packet) => p.family !== fam4 || p.proto !== proto;
    const v6 = protocol === 'icmpv6';
    if (name === 'type' || name === 'code') {
      const key = name === 'type' ? 'icmpType' : 'icmpCode';
      const kind: ValueKind = v6
        ? name === 'type'
          ? 'icmp6type'
          : 'icmp6code'
        : name === 'type'
          ? 'icmptype'
          : 'icmpcode';
      return {
        kind,
        get: (p) => (other(p) ? ABSENT : p[key] === undefined ? UNKNOWN : exact(p[key] as number)),
        known: true,
      };
    }
    return { kind: 'number', get: (p) => (other(p) ? ABSENT : UNKNOWN), known: true };
  }
  return unknownField();
}

const NOT_LO: LVal = { t: 'not', v: 'lo' };
const NOT_LOOPBACK: LVal = { t: 'not', v: 'loopback' };

function ifname(which: 'iifname' | 'oifname'): (p: Packet) => LVal {
  // A hook with no such interface reads an empty name (nft_meta_store_ifname).
  const notLo = which === 'iifname' ? 'iifNotLo' : 'oifNotLo';
  return (p) => {
    const n = p[which];
    if (n === undefined) return p[notLo] === true ? NOT_LO : UNKNOWN;
    return exact(n ?? '');
  };
}

function metaField(key: string): Field {
  switch (key) {
    case 'l4proto':
      return { kind: 'proto', get: (p) => exact(p.proto), index: 'proto', known: true };
    case 'nfproto':
      return { kind: 'nfproto', get: (p) => exact(p.family === 4 ? 2 : 10), known: true };
    case 'protocol':
      return {
        kind: 'ethertype',
        get: (p) => exact(p.family === 4 ? 0x0800 : 0x86dd),
        known: true,
      };
    case 'iifname':
    case 'iif':
      return { kind: 'ifname', get: ifname('iifname'), known: true };
    case 'oifname':
    case 'oif':
      return { kind: 'ifname', get: ifname('oifname'), known: true };
    case 'iiftype':
    case 'oiftype': {
      const which = key === 'iiftype' ? 'iifname' : 'oifname';
      return {
        kind: 'iftype',
        get: (p) =>
          p[which] === 'lo'
            ? exact('loopback')
            : p[which === 'iifname' ? 'iifNotLo' : 'oifNotLo'] === true
              ? NOT_LOOPBACK
              : UNKNOWN,
        known: true,
      };
    }
    case 'mark':
      return {
        kind: 'number',
        get: (_p, m) => (m.meta === undefined ? UNKNOWN : exact(m.meta)),
        known: true,
      };
    case 'pkttype':
      return { kind: 'string', get: pkttype, known: true };
    case 'skuid':
    case 'skgid':
      return { kind: 'number', get: socketOwner, known: true };
    default:
      return unknownField();
  }
}

/**
 * The owner of the packet's local socket, which the recording does not hold. Where a packet has
 * no socket the kernel's lookup ends the rule whatever the comparison (nft_meta.c: NFT_BREAK
 * without a full skb->sk): prerouting and forward never have one, nor the first packet on input
 * (early demux attaches only an established socket; measured: later TCP packets on input match
 * `meta skuid 0` of a root server). Output and postrouting packets may be the host's own.
 */
function socketOwner(p: Packet): LVal {
  if (p.hook === 'prerouting' || p.hook === 'forward') return ABSENT;
  if (p.hook === 'input' && p.ct.state === 'new' && p.ct.direction === 'original') return ABSENT;
  return UNKNOWN;
}

/** The link-layer packet type, from what the destination address is. */
function pkttype(p: Packet): LVal {
  switch (p.daddrType) {
    case 'broadcast':
    case 'multicast':
      return p.hook === 'output' || p.hook === 'postrouting' ? UNKNOWN : exact(p.daddrType);
    case 'local':
    case 'unicast':
      return exact('host');
    default:
      return UNKNOWN;
  }
}

function ctField(ct: Record<string, unknown>): Field {
  const key = String(ct.key);
  switch (key) {
    case 'state':
      return { kind: 'ctstate', get: (p) => exact(CT_STATE_BIT[p.ct.state]), known: true };
    case 'direction':
      return { kind: 'ctdir', get: (p) => exact(p.ct.direction), known: true };
    case 'status':
      return {
        kind: 'ctstatus',
        get: (p) => ctStatus(p.ct.status & p.ct.statusKnown, p.ct.statusKnown >>> 0),
        known: true,
      };
    case 'mark':
      return {
        kind: 'number',
        get: (_p, m) => (m.ct === undefined ? UNKNOWN : exact(m.ct)),
        known: true,
      };
    case 'l3proto':
      return { kind: 'nfproto', get: (p) => exact(p.family === 4 ? 2 : 10), known: true };
    case 'protocol':
      return { kind: 'proto', get: (p) => exact(p.proto), known: true };
    case 'saddr':
    case 'daddr':
    case 'proto-src':
    case 'proto-dst':
      return tupleField(key, ct.dir === 'reply' ? 'reply' : 'original', ct.family);
    default:
      return unknownField();
  }
}

/**
 * The ct status a packet shows, made once per combination of bits: a walk reads it on every
 * `ct status` match, and the packets of a connection hold only a few (IPS_* bits below 0x10000).
 */
const CT_STATUS_SEEN = new Map<number, LVal>();
function ctStatus(v: number, known: number): LVal {
  if ((v | known) >>> 16 !== 0) return { t: 'bits', v, known };
  const key = (known << 16) | v;
  let s = CT_STATUS_SEEN.get(key);
  if (s === undefined) {
    s = { t: 'bits', v, known };
    CT_STATUS_SEEN.set(key, s);
  }
  return s;
}

/**
 * A conntrack tuple's address or port. Without NAT the original tuple is the packet's own
 * in the original direction and swapped in the reply, and the reply tuple is the original
 * swapped; where NAT may have rewritten it, not known.
 */
function tupleField(key: string, dir: 'original' | 'reply', family: unknown): Field {
  const fam = family === 'ip' ? 4 : family === 'ip6' ? 6 : undefined;
  const isAddr = key === 'saddr' || key === 'daddr';
  const src = key === 'saddr' || key === 'proto-src';
  return {
    kind: isAddr ? (fam === 4 ? 'addr4' : fam === 6 ? 'addr6' : 'addr') : 'number',
    get: (p) => {
      if (fam !== undefined && p.family !== fam) return ABSENT;
      const known = p.ct.statusKnown & IPS_NAT;
      if (known !== IPS_NAT || (p.ct.status & IPS_NAT) !== 0) return UNKNOWN;
      // The packet's own source is the tuple's source when both directions agree.
      const own = (p.ct.direction === 'original') === (dir === 'original') ? src : !src;
      if (isAddr) return addr(own ? p.saddr : p.daddr);
      // ICMP's tuple holds its id and type, which the packet does not show.
      if (!PORT_PROTOS.has(p.proto)) return UNKNOWN;
      return port(own ? p.sport : p.dport);
    },
    known: true,
  };
}

function fibField(fib: Record<string, unknown>): Field {
  const flags = Array.isArray(fib.flags) ? fib.flags.map(String) : [];
  if (fib.result === 'oif' || fib.result === 'oifname') return fibOif(flags);
  if (fib.result !== 'type') return unknownField('ifname');
  const onlyAddr = flags.every((f) => f === 'saddr' || f === 'daddr' || f === 'mark');
  const which = flags.includes('saddr') ? 'saddrType' : 'daddrType';
  return {
    kind: 'string',
    // A lookup bound to an interface (iif/oif) may see the address otherwise: not decided.
    get: (p) => (!onlyAddr || p[which] === 'unknown' ? UNKNOWN : exact(p[which])),
    known: true,
  };
}

/**
 * The interface a fib lookup routes by. The walk takes a packet's iif to be the route back to
 * its source (symmetric routing, how it names iif), so reverse-path filtering (`fib saddr .
 * iif oif`) finds iif; `fib daddr oif` is the packet's oif once it is routed. Other lookups
 * (a daddr bound to iif, before routing) are not decided.
 */
function fibOif(flags: readonly string[]): Field {
  const has = (f: string) => flags.includes(f);
  const rest = flags.filter((f) => f !== 'mark');
  if (has('saddr') && has('iif') && rest.length === 2) {
    return {
      kind: 'ifname',
      get: (p) => (typeof p.iifname === 'string' ? exact(p.iifname) : UNKNOWN),
      known: true,
    };
  }
  if (has('daddr') && rest.length === 1) {
    return {
      kind: 'ifname',
      get: (p) => (typeof p.oifname === 'string' ? exact(p.oifname) : UNKNOWN),
      known: true,
    };
  }
  return unknownField('ifname');
}

/**
 * IPv6 extension headers: none, as `ip6 nexthdr` assumes (a recorded flow's packets are taken
 * to carry their layer-4 header right after the IP header). `exthdr rt exists` is false,
 * `missing` true; a field of a header that is not there is no match, negated or not (the
 * kernel's lookup fails: NFT_BREAK), on IPv4 too.
 */
function exthdrField(e: Readonly<Record<string, unknown>>): Field {
  if (e.field === undefined) return { kind: 'number', get: () => NO_HEADER, known: true };
  return { kind: 'number', get: () => ABSENT, known: true };
}

const NO_HEADER = exact(0);

function bitwise(op: string, inner: Field, arg: unknown): Field {
  if (!inner.known) return unknownField(inner.kind);
  const m = parseAtom(inner.kind, arg);
  if (m === undefined) return unknownField(inner.kind);
  return {
    kind: inner.kind,
    get: (p, marks) => apply(op, inner.get(p, marks), m),
    known: true,
  };
}

function apply(op: string, v: LVal, m: Scalar): LVal {
  if (v.t === 'absent' || v.t === 'unknown') return v;
  if (v.t === 'v' && typeof v.v === 'bigint' && typeof m === 'bigint') {
    if (op === '&') return exact(v.v & m);
    if (op === '|') return exact(v.v | m);
    return UNKNOWN;
  }
  if (typeof m !== 'number') return UNKNOWN;
  if (v.t === 'v' && typeof v.v === 'number') {
    switch (op) {
      case '&':
        return exact((v.v & m) >>> 0);
      case '|':
        return exact((v.v | m) >>> 0);
      case '^':
        return exact((v.v ^ m) >>> 0);
      case '<<':
        return exact((v.v << m) >>> 0);
      case '>>':
        return exact(v.v >>> m);
    }
  }
  if (v.t === 'bits') {
    if (op === '&') return { t: 'bits', v: (v.v & m) >>> 0, known: (v.known | ~m) >>> 0 };
    if (op === '|') return { t: 'bits', v: (v.v | m) >>> 0, known: (v.known | m) >>> 0 };
  }
  return UNKNOWN;
}
