// The normalized conntrack event: what the recorder writes and every analysis reads.
// Raw facts only: no port collapsing, no confirmation policy (those live in analyzer/flows.ts).

/** Event types. SNAPSHOT is an entry read from a table dump, not from the event stream. */
export const EventType = {
  NEW: 1,
  UPDATE: 2,
  DESTROY: 3,
  SNAPSHOT: 4,
} as const;
export type EventTypeCode = (typeof EventType)[keyof typeof EventType];

/** IP protocol numbers the rules care about; any other protocol is still recorded. */
export const Proto = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
} as const;

/** Conntrack status bits (linux/netfilter/nf_conntrack_common.h). */
export const Status = {
  EXPECTED: 0x1,
  SEEN_REPLY: 0x2,
  ASSURED: 0x4,
  CONFIRMED: 0x8,
  SRC_NAT: 0x10,
  DST_NAT: 0x20,
  DYING: 0x200,
} as const;

/** One direction of a connection, as the kernel reports it. */
export interface Tuple {
  /** Source address in network byte order: 4 bytes (IPv4) or 16 bytes (IPv6). */
  src: Uint8Array;
  /** Destination address in network byte order, same length as src. */
  dst: Uint8Array;
  /** Ports for protocols that have them (TCP, UDP, UDP-Lite, SCTP, DCCP); 0 otherwise. */
  sport: number;
  dport: number;
  /** ICMP / ICMPv6 type, code and identifier; 0 for other protocols. */
  icmpType: number;
  icmpCode: number;
  icmpId: number;
}

/** Packet and byte counters, present only on events that carry them (DESTROY with acct=1). */
export interface Counters {
  origPackets: number;
  origBytes: number;
  replyPackets: number;
  replyBytes: number;
}

export interface CtEvent {
  type: EventTypeCode;
  /** Address family: 4 or 6. */
  family: 4 | 6;
  /** IP protocol number of the original tuple (any, not only TCP/UDP/ICMP). */
  proto: number;
  /** Conntrack status bits at the time of the event. */
  status: number;
  /** Conntrack id (CTA_ID), 0 when absent. */
  id: number;
  /** Event time in microseconds since the Unix epoch. */
  time: number;
  /** True when `time` came from the kernel (flow timestamp), false when it is the receive time. */
  timeKernel: boolean;
  /** Flow start in µs since the epoch, when the kernel reported it (nf_conntrack_timestamp=1). */
  start?: number;
  orig: Tuple;
  reply: Tuple;
  /** TCP conntrack state (enum tcp_conntrack), when the event carries it. */
  tcpState?: number;
  /** Connection mark, when non-zero. */
  mark?: number;
  /** Conntrack zone, when not the default zone. */
  zone?: number;
  counters?: Counters;
}
