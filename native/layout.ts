// The binary record layout of native/record.h, mirrored for the decoder; a test pins the two.
//
//   off  size  field
//     0     1  type        1 NEW, 2 UPDATE, 3 DESTROY (4 SNAPSHOT reserved for table dumps)
//     1     1  family      4 or 6
//     2     1  proto       L4 protocol number of the original tuple
//     3     1  tcpState    valid with HAS_TCP_STATE
//     4     2  flags       Flag below
//     6     2  zone        valid with HAS_ZONE
//     8     4  status      conntrack status bits
//    12     4  mark        valid with HAS_MARK
//    16     4  id          conntrack id, 0 when absent
//    20     4  reserved    0
//    24     8  time        µs since the epoch: kernel stop time (TIME_KERNEL) or receive time
//    32     8  start       µs since the epoch, valid with HAS_START
//    40    40  orig tuple  src[16] dst[16] sport:2 dport:2 icmpId:2 icmpType:1 icmpCode:1
//    80    40  reply tuple same shape
//   120    32  counters    u64 origPackets, origBytes, replyPackets, replyBytes (HAS_COUNTERS)
//   152        RECORD_SIZE
//
// Integers are little-endian; addresses are in network order (IPv4 in the first 4 bytes);
// ports and ICMP fields are plain integers.

export const RECORD_SIZE = 152;

/** Byte offset within a tuple; a tuple starts at ORIG or REPLY. */
const TUPLE = { src: 0, dst: 16, sport: 32, dport: 34, icmpId: 36, icmpType: 38, icmpCode: 39 };
const ORIG = 40;
const REPLY = 80;

/** Every field as offset and size, flat, named as the addon's layout() names them. */
export const FIELDS = {
  type: { offset: 0, size: 1 },
  family: { offset: 1, size: 1 },
  proto: { offset: 2, size: 1 },
  tcpState: { offset: 3, size: 1 },
  flags: { offset: 4, size: 2 },
  zone: { offset: 6, size: 2 },
  status: { offset: 8, size: 4 },
  mark: { offset: 12, size: 4 },
  id: { offset: 16, size: 4 },
  reserved: { offset: 20, size: 4 },
  time: { offset: 24, size: 8 },
  start: { offset: 32, size: 8 },
  origSrc: { offset: ORIG + TUPLE.src, size: 16 },
  origDst: { offset: ORIG + TUPLE.dst, size: 16 },
  origSport: { offset: ORIG + TUPLE.sport, size: 2 },
  origDport: { offset: ORIG + TUPLE.dport, size: 2 },
  origIcmpId: { offset: ORIG + TUPLE.icmpId, size: 2 },
  origIcmpType: { offset: ORIG + TUPLE.icmpType, size: 1 },
  origIcmpCode: { offset: ORIG + TUPLE.icmpCode, size: 1 },
  replySrc: { offset: REPLY + TUPLE.src, size: 16 },
  replyDst: { offset: REPLY + TUPLE.dst, size: 16 },
  replySport: { offset: REPLY + TUPLE.sport, size: 2 },
  replyDport: { offset: REPLY + TUPLE.dport, size: 2 },
  replyIcmpId: { offset: REPLY + TUPLE.icmpId, size: 2 },
  replyIcmpType: { offset: REPLY + TUPLE.icmpType, size: 1 },
  replyIcmpCode: { offset: REPLY + TUPLE.icmpCode, size: 1 },
  origPackets: { offset: 120, size: 8 },
  origBytes: { offset: 128, size: 8 },
  replyPackets: { offset: 136, size: 8 },
  replyBytes: { offset: 144, size: 8 },
} as const;

export type FieldName = keyof typeof FIELDS;

/** Bits of the `flags` field: which optional fields are valid. */
export const Flag = {
  TIME_KERNEL: 1,
  HAS_START: 2,
  HAS_COUNTERS: 4,
  HAS_TCP_STATE: 8,
  HAS_MARK: 16,
  HAS_ZONE: 32,
} as const;

/** Values of the `type` field (the same codes as EventType in journal/event.ts). */
export const RecordType = {
  NEW: 1,
  UPDATE: 2,
  DESTROY: 3,
  SNAPSHOT: 4,
} as const;
