// ct-analyze check: what a packet field holds for the evaluator, and nft's names for the values rules compare it with.
import { parseAddress } from '../core/address.js';
import { addressNumber } from '../core/prefix.js';

/** A value as the evaluator compares it: numbers, addresses as bigint (see addressKey), names. */
export type Scalar = number | bigint | string;

/**
 * What a packet (or a walk's marks) makes of a field:
 * - v: one exact value;
 * - bits: a 32-bit value of which only the `known` bits are known (ct status, ip frag-off);
 * - range: any port of an inclusive range (the flow table collapsed it);
 * - unknown: the recording does not hold it;
 * - absent: the packet has no such header (ip saddr on IPv6, tcp dport on UDP), so every
 *   match on it is false, negated or not: nft adds an implicit protocol check.
 */
export type LVal =
  | { readonly t: 'v'; readonly v: Scalar }
  | { readonly t: 'bits'; readonly v: number; readonly known: number }
  | { readonly t: 'range'; readonly from: number; readonly to: number }
  | { readonly t: 'unknown' }
  /** Not known, except that it is not this value (an interface known not to be `lo`). */
  | { readonly t: 'not'; readonly v: Scalar }
  | { readonly t: 'absent' };

export const UNKNOWN: LVal = { t: 'unknown' };
export const ABSENT: LVal = { t: 'absent' };
/** Small integers (ports, protocols, ct state bits, marks) are read per match: made once each. */
const SMALL: (LVal | undefined)[] = new Array(0x10000);
export const exact = (v: Scalar): LVal => {
  if (typeof v === 'number' && v >= 0 && v < 0x10000 && Number.isInteger(v)) {
    let s = SMALL[v];
    if (s === undefined) {
      s = { t: 'v', v };
      SMALL[v] = s;
    }
    return s;
  }
  if (typeof v === 'string') {
    // Interface names and address types: a handful, read on every match of an interface or fib.
    let s = NAMES.get(v);
    if (s === undefined) {
      s = { t: 'v', v };
      if (NAMES.size < 4_096) NAMES.set(v, s);
    }
    return s;
  }
  return { t: 'v', v };
};
const NAMES = new Map<string, LVal>();

/** IPv6 addresses are offset by 2^128 so that one ordered space holds both families apart. */
const V6 = 1n << 128n;

/** An address (4 or 16 bytes) as the evaluator orders it. */
export function addressKey(b: Uint8Array): bigint {
  // One BigInt for an IPv4 address, not one per byte: every packet's addresses are read so.
  if (b.length === 4) {
    return BigInt(
      (((b[0] as number) << 24) |
        ((b[1] as number) << 16) |
        ((b[2] as number) << 8) |
        (b[3] as number)) >>>
        0,
    );
  }
  return addressNumber(b) + V6;
}

/** How a field's values are read from the JSON (right-hand sides, set elements, map keys). */
export type ValueKind =
  | 'addr4'
  | 'addr6'
  | 'addr'
  | 'number'
  | 'proto'
  | 'ifname'
  | 'string'
  | 'ctstate'
  | 'ctstatus'
  | 'ctdir'
  | 'tcpflags'
  | 'nfproto'
  | 'ethertype'
  | 'icmptype'
  | 'icmpcode'
  | 'icmp6type'
  | 'icmp6code'
  | 'iftype';

/** Fields whose values are bit sets: `in` (nft's implicit op on them) tests any bit. */
export const FLAG_KINDS: ReadonlySet<ValueKind> = new Set(['ctstate', 'ctstatus', 'tcpflags']);

const PROTOS: Record<string, number> = {
  hopopt: 0,
  icmp: 1,
  igmp: 2,
  ggp: 3,
  ipencap: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  dccp: 33,
  ipv6: 41,
  gre: 47,
  esp: 50,
  ah: 51,
  'ipv6-icmp': 58,
  icmpv6: 58,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
  udplite: 136,
};

const CT_STATE: Record<string, number> = {
  invalid: 1,
  established: 2,
  related: 4,
  new: 8,
  untracked: 64,
};

/** IPS_* bits (linux/netfilter/nf_conntrack_common.h) by nft's names. */
const CT_STATUS: Record<string, number> = {
  expected: 0x1,
  'seen-reply': 0x2,
  assured: 0x4,
  confirmed: 0x8,
  snat: 0x10,
  dnat: 0x20,
  'seq-adjust': 0x40,
  'snat-done': 0x80,
  'dnat-done': 0x100,
  dying: 0x200,
  'fixed-timeout': 0x400,
  'helper-set': 0x2000,
  offload: 0x4000,
  'hw-offload': 0x8000,
};

const TCP_FLAGS: Record<string, number> = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
  ecn: 0x40,
  cwr: 0x80,
};

const ICMP_TYPE: Record<string, number> = {
  'echo-reply': 0,
  'destination-unreachable': 3,
  'source-quench': 4,
  redirect: 5,
  'echo-request': 8,
  'router-advertisement': 9,
  'router-solicitation': 10,
  'time-exceeded': 11,
  'parameter-problem': 12,
  'timestamp-request': 13,
  'timestamp-reply': 14,
  'info-request': 15,
  'info-reply': 16,
  'address-mask-request': 17,
  'address-mask-reply': 18,
};

const ICMP_CODE: Record<string, number> = {
  'net-unreachable': 0,
  'host-unreachable': 1,
  'prot-unreachable': 2,
  'port-unreachable': 3,
  'frag-needed': 4,
  'net-prohibited': 9,
  'host-prohibited': 10,
  'admin-prohibited': 13,
};

const ICMP6_TYPE: Record<string, number> = {
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'mld-listener-query': 130,
  'mld-listener-report': 131,
  'mld-listener-done': 132,
  'mld-listener-reduction': 132,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'nd-redirect': 137,
  'router-renumbering': 138,
  'ind-neighbor-solicit': 141,
  'ind-neighbor-advert': 142,
  'mld2-listener-report': 143,
};

const ICMP6_CODE: Record<string, number> = {
  'no-route': 0,
  'admin-prohibited': 1,
  'addr-unreachable': 3,
  'port-unreachable': 4,
  'policy-fail': 5,
  'reject-route': 6,
};

const NFPROTO: Record<string, number> = { ipv4: 2, ipv6: 10 };
const ETHERTYPE: Record<string, number> = { ip: 0x0800, arp: 0x0806, ip6: 0x86dd, vlan: 0x8100 };
const IFTYPE: Record<number, string> = { 1: 'ether', 772: 'loopback' };

const NAMED: Partial<Record<ValueKind, Record<string, number>>> = {
  proto: PROTOS,
  ctstate: CT_STATE,
  ctstatus: CT_STATUS,
  tcpflags: TCP_FLAGS,
  icmptype: ICMP_TYPE,
  icmpcode: ICMP_CODE,
  icmp6type: ICMP6_TYPE,
  icmp6code: ICMP6_CODE,
  nfproto: NFPROTO,
  ethertype: ETHERTYPE,
};

/**
 * One JSON atom (a string or number of a right-hand side or set element) as the field of
 * `kind` holds it; undefined when it cannot be read (a name this table lacks), which makes
 * the match unknown rather than wrong.
 */
export function parseAtom(kind: ValueKind, atom: unknown): Scalar | undefined {
  if (Array.isArray(atom)) {
    // A flag list (`ct state established,related`, `tcp flags & (fin|syn)`): the OR of its bits.
    if (!FLAG_KINDS.has(kind)) return undefined;
    let bits = 0;
    for (const a of atom) {
      const b = parseAtom(kind, a);
      if (typeof b !== 'number') return undefined;
      bits |= b;
    }
    return bits >>> 0;
  }
  switch (kind) {
    case 'addr4':
    case 'addr6':
    case 'addr': {
      if (typeof atom !== 'string') return undefined;
      const b = parseAddress(atom);
      if (b === undefined) return undefined;
      if ((kind === 'addr4' && b.length !== 4) || (kind === 'addr6' && b.length !== 16)) {
        return undefined;
      }
      return addressKey(b);
    }
    case 'ifname':
    case 'string':
    case 'ctdir':
      return typeof atom === 'string' ? atom : undefined;
    case 'iftype':
      if (typeof atom === 'number') return IFTYPE[atom];
      return typeof atom === 'string' ? atom : undefined;
    default: {
      if (typeof atom === 'number') return atom;
      if (typeof atom !== 'string') return undefined;
      if (/^(0x[0-9a-f]+|\d+)$/i.test(atom)) return Number(atom);
      const named = NAMED[kind]?.[atom];
      return named ?? (kind === 'number' ? SERVICES[atom] : undefined);
    }
  }
}

/** The services nft may print by name when a listing asked for names (`nft -S` does not). */
const SERVICES: Record<string, number> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  ntp: 123,
  https: 443,
};

/** The number of a protocol name (for tests and renderers). */
export function protoNumber(name: string): number | undefined {
  return PROTOS[name];
}
