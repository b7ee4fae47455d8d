// The fixed-size binary record the reader thread writes and native/layout.ts reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ct {

// One conntrack event, 152 bytes. Integers little-endian, addresses in network order.
// Mirrored field for field in native/layout.ts; test/native/layout.test.ts compares the two.
//
//   off  size  field
//     0     1  type        1 NEW, 2 UPDATE, 3 DESTROY (4 SNAPSHOT reserved for table dumps)
//     1     1  family      4 or 6
//     2     1  proto       L4 protocol number (CTA_PROTO_NUM of the original tuple)
//     3     1  tcp_state   CTA_PROTOINFO_TCP_STATE, valid with kHasTcpState
//     4     2  flags       1 TIME_KERNEL, 2 HAS_START, 4 HAS_COUNTERS, 8 HAS_TCP_STATE,
//                          16 HAS_MARK, 32 HAS_ZONE
//     6     2  zone        CTA_ZONE, valid with kHasZone
//     8     4  status      CTA_STATUS
//    12     4  mark        CTA_MARK, valid with kHasMark
//    16     4  id          CTA_ID (0 when absent)
//    20     4  reserved    0
//    24     8  time_us     µs since the epoch: CTA_TIMESTAMP_STOP on DESTROY when present
//                          (kTimeKernel), else the receive time (CLOCK_REALTIME)
//    32     8  start_us    µs since the epoch, CTA_TIMESTAMP_START, valid with kHasStart
//    40    40  orig        original tuple (Tuple below)
//    80    40  reply       reply tuple (Tuple below)
//   120     8  orig_packets   counters, valid with kHasCounters
//   128     8  orig_bytes
//   136     8  reply_packets
//   144     8  reply_bytes
//   152        size
//
// Tuple, 40 bytes:
//   off  size  field
//     0    16  src         IPv4 in the first 4 bytes, the rest 0
//    16    16  dst
//    32     2  sport       ports for protocols that have them, host order
//    34     2  dport
//    36     2  icmp_id     ICMP / ICMPv6 identifier, host order
//    38     1  icmp_type
//    39     1  icmp_code
//
// Times are µs, not ns, so JavaScript reads them exactly as lo + hi * 2^32 < 2^53.

enum EventType : uint8_t { kNew = 1, kUpdate = 2, kDestroy = 3, kSnapshot = 4 };

enum Flag : uint16_t {
  kTimeKernel = 1,
  kHasStart = 2,
  kHasCounters = 4,
  kHasTcpState = 8,
  kHasMark = 16,
  kHasZone = 32,
};

struct Tuple {
  uint8_t src[16];
  uint8_t dst[16];
  uint16_t sport;
  uint16_t dport;
  uint16_t icmp_id;
  uint8_t icmp_type;
  uint8_t icmp_code;
};

struct Record {
  uint8_t type;
  uint8_t family;
  uint8_t proto;
  uint8_t tcp_state;
  uint16_t flags;
  uint16_t zone;
  uint32_t status;
  uint32_t mark;
  uint32_t id;
  uint32_t reserved;
  uint64_t time_us;
  uint64_t start_us;
  Tuple orig;
  Tuple reply;
  uint64_t orig_packets;
  uint64_t orig_bytes;
  uint64_t reply_packets;
  uint64_t reply_bytes;
};

// The record is written in host order and read as little-endian by JavaScript.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "records are little-endian");

static_assert(sizeof(Tuple) == 40, "tuple layout");
static_assert(offsetof(Tuple, dst) == 16, "tuple layout");
static_assert(offsetof(Tuple, sport) == 32, "tuple layout");
static_assert(offsetof(Tuple, dport) == 34, "tuple layout");
static_assert(offsetof(Tuple, icmp_id) == 36, "tuple layout");
static_assert(offsetof(Tuple, icmp_type) == 38, "tuple layout");
static_assert(offsetof(Tuple, icmp_code) == 39, "tuple layout");

static_assert(sizeof(Record) == 152, "record layout");
static_assert(offsetof(Record, family) == 1, "record layout");
static_assert(offsetof(Record, proto) == 2, "record layout");
static_assert(offsetof(Record, tcp_state) == 3, "record layout");
static_assert(offsetof(Record, flags) == 4, "record layout");
static_assert(offsetof(Record, zone) == 6, "record layout");
static_assert(offsetof(Record, status) == 8, "record layout");
static_assert(offsetof(Record, mark) == 12, "record layout");
static_assert(offsetof(Record, id) == 16, "record layout");
static_assert(offsetof(Record, reserved) == 20, "record layout");
static_assert(offsetof(Record, time_us) == 24, "record layout");
static_assert(offsetof(Record, start_us) == 32, "record layout");
static_assert(offsetof(Record, orig) == 40, "record layout");
static_assert(offsetof(Record, reply) == 80, "record layout");
static_assert(offsetof(Record, orig_packets) == 120, "record layout");
static_assert(offsetof(Record, orig_bytes) == 128, "record layout");
static_assert(offsetof(Record, reply_packets) == 136, "record layout");
static_assert(offsetof(Record, reply_bytes) == 144, "record layout");

// What layout() reports to JavaScript: every field as a flat name, offset and size.
struct FieldDesc {
  const char* name;
  size_t offset;
  size_t size;
};

#define CT_FIELD(name, member) {name, offsetof(Record, member), sizeof(Record::member)}
#define CT_TUPLE(prefix, dir)                                                         \
  {prefix "Src", offsetof(Record, dir) + offsetof(Tuple, src), sizeof(Tuple::src)},   \
      {prefix "Dst", offsetof(Record, dir) + offsetof(Tuple, dst), sizeof(Tuple::dst)}, \
      {prefix "Sport", offsetof(Record, dir) + offsetof(Tuple, sport), 2},              \
      {prefix "Dport", offsetof(Record, dir) + offsetof(Tuple, dport), 2},              \
      {prefix "IcmpId", offsetof(Record, dir) + offsetof(Tuple, icmp_id), 2},           \
      {prefix "IcmpType", offsetof(Record, dir) + offsetof(Tuple, icmp_type), 1},       \
      {prefix "IcmpCode", offsetof(Record, dir) + offsetof(Tuple, icmp_code), 1}

inline constexpr FieldDesc kFields[] = {
    CT_FIELD("type", type),
    CT_FIELD("family", family),
    CT_FIELD("proto", proto),
    CT_FIELD("tcpState", tcp_state),
    CT_FIELD("flags", flags),
    CT_FIELD("zone", zone),
    CT_FIELD("status", status),
    CT_FIELD("mark", mark),
    CT_FIELD("id", id),
    CT_FIELD("reserved", reserved),
    CT_FIELD("time", time_us),
    CT_FIELD("start", start_us),
    CT_TUPLE("orig", orig),
    CT_TUPLE("reply", reply),
    CT_FIELD("origPackets", orig_packets),
    CT_FIELD("origBytes", orig_bytes),
    CT_FIELD("replyPackets", reply_packets),
    CT_FIELD("replyBytes", reply_bytes),
};

#undef CT_FIELD
#undef CT_TUPLE

}  // namespace ct
