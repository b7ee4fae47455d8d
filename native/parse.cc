// Hand parser for ctnetlink events (cheaper than libnetfilter_conntrack's full attribute walk).
#include "parse.h"

#include <arpa/inet.h>
#include <endian.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstring>

namespace ct {
namespace {

// Calls f(type, payload, payload_len) for each attribute; false on any length inconsistency
// or when f returns false.
template <typename F>
bool ForEachAttr(const uint8_t* p, size_t len, F&& f) {
  while (len > 0) {
    if (len < NLA_HDRLEN) return false;
    nlattr a;
    std::memcpy(&a, p, sizeof a);
    if (a.nla_len < NLA_HDRLEN || a.nla_len > len) return false;
    if (!f(a.nla_type & NLA_TYPE_MASK, p + NLA_HDRLEN, size_t{a.nla_len} - NLA_HDRLEN)) {
      return false;
    }
    size_t step = NLA_ALIGN(a.nla_len);
    if (step >= len) break;  // the last attribute may omit its padding
    p += step;
    len -= step;
  }
  return true;
}

bool U8(const uint8_t* p, size_t n, uint8_t* v) {
  if (n != 1) return false;
  *v = p[0];
  return true;
}

bool Be16(const uint8_t* p, size_t n, uint16_t* v) {
  if (n != 2) return false;
  uint16_t x;
  std::memcpy(&x, p, 2);
  *v = be16toh(x);
  return true;
}

bool Be32(const uint8_t* p, size_t n, uint32_t* v) {
  if (n != 4) return false;
  uint32_t x;
  std::memcpy(&x, p, 4);
  *v = be32toh(x);
  return true;
}

bool Be64(const uint8_t* p, size_t n, uint64_t* v) {
  if (n != 8) return false;
  uint64_t x;
  std::memcpy(&x, p, 8);
  *v = be64toh(x);
  return true;
}

// Counters come as 64-bit attributes, or as the old 32-bit ones.
bool Counter(uint16_t type, const uint8_t* p, size_t n, uint64_t* packets, uint64_t* bytes) {
  uint32_t v32;
  switch (type) {
    case CTA_COUNTERS_PACKETS:
      return Be64(p, n, packets);
    case CTA_COUNTERS_BYTES:
      return Be64(p, n, bytes);
    case CTA_COUNTERS32_PACKETS:
      if (!Be32(p, n, &v32)) return false;
      *packets = v32;
      return true;
    case CTA_COUNTERS32_BYTES:
      if (!Be32(p, n, &v32)) return false;
      *bytes = v32;
      return true;
    default:
      return true;
  }
}

bool Addr(const uint8_t* p, size_t n, size_t want, bool family_ok, uint8_t* dst) {
  if (!family_ok || n != want) return false;
  std::memcpy(dst, p, want);
  return true;
}

// CTA_TUPLE_ORIG / CTA_TUPLE_REPLY: addresses, protocol, ports or ICMP fields.
bool ParseTuple(const uint8_t* p, size_t len, int family, Tuple* t, uint8_t* proto) {
  bool has_src = false, has_dst = false, has_proto = false;
  bool ok = ForEachAttr(p, len, [&](uint16_t type, const uint8_t* v, size_t n) {
    switch (type) {
      case CTA_TUPLE_IP:
        return ForEachAttr(v, n, [&](uint16_t ip, const uint8_t* a, size_t an) {
          switch (ip) {
            case CTA_IP_V4_SRC:
              return has_src = Addr(a, an, 4, family == 4, t->src);
            case CTA_IP_V4_DST:
              return has_dst = Addr(a, an, 4, family == 4, t->dst);
            case CTA_IP_V6_SRC:
              return has_src = Addr(a, an, 16, family == 6, t->src);
            case CTA_IP_V6_DST:
              return has_dst = Addr(a, an, 16, family == 6, t->dst);
            default:
              return true;
          }
        });
      case CTA_TUPLE_PROTO:
        return ForEachAttr(v, n, [&](uint16_t pt, const uint8_t* a, size_t an) {
          switch (pt) {
            case CTA_PROTO_NUM:
              return has_proto = U8(a, an, proto);
            case CTA_PROTO_SRC_PORT:
              return Be16(a, an, &t->sport);
            case CTA_PROTO_DST_PORT:
              return Be16(a, an, &t->dport);
            case CTA_PROTO_ICMP_ID:
            case CTA_PROTO_ICMPV6_ID:
              return Be16(a, an, &t->icmp_id);
            case CTA_PROTO_ICMP_TYPE:
            case CTA_PROTO_ICMPV6_TYPE:
              return U8(a, an, &t->icmp_type);
            case CTA_PROTO_ICMP_CODE:
            case CTA_PROTO_ICMPV6_CODE:
              return U8(a, an, &t->icmp_code);
            default:
              return true;
          }
        });
      default:
        return true;
    }
  });
  return ok && has_src && has_dst && has_proto;
}

bool ParseProtoInfo(const uint8_t* p, size_t len, Record* r) {
  return ForEachAttr(p, len, [&](uint16_t type, const uint8_t* v, size_t n) {
    if (type != CTA_PROTOINFO_TCP) return true;
    return ForEachAttr(v, n, [&](uint16_t tt, const uint8_t* a, size_t an) {
      if (tt != CTA_PROTOINFO_TCP_STATE) return true;
      if (!U8(a, an, &r->tcp_state)) return false;
      r->flags |= kHasTcpState;
      return true;
    });
  });
}

}  // namespace

Parsed ParseMessage(const uint8_t* msg, size_t len, uint64_t now_us, Record* out) {
  nlmsghdr h;
  if (len < sizeof h) return Parsed::kMalformed;
  std::memcpy(&h, msg, sizeof h);
  if (NFNL_SUBSYS_ID(h.nlmsg_type) != NFNL_SUBSYS_CTNETLINK) return Parsed::kSkip;

  uint8_t type;
  switch (NFNL_MSG_TYPE(h.nlmsg_type)) {
    case IPCTNL_MSG_CT_NEW: {
      const uint16_t create = NLM_F_CREATE | NLM_F_EXCL;
      type = (h.nlmsg_flags & create) == create ? kNew : kUpdate;
      break;
    }
    case IPCTNL_MSG_CT_DELETE:
      type = kDestroy;
      break;
    default:
      return Parsed::kSkip;
  }

  const size_t attrs_at = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg));
  if (len < NLMSG_HDRLEN + sizeof(nfgenmsg)) return Parsed::kMalformed;
  nfgenmsg g;
  std::memcpy(&g, msg + NLMSG_HDRLEN, sizeof g);
  int family;
  if (g.nfgen_family == AF_INET) {
    family = 4;
  } else if (g.nfgen_family == AF_INET6) {
    family = 6;
  } else {
    return Parsed::kSkip;
  }

  Record& r = *out;
  std::memset(&r, 0, sizeof r);
  r.type = type;
  r.family = static_cast<uint8_t>(family);

  bool has_orig = false, has_reply = false, has_stop = false;
  uint64_t start_ns = 0, stop_ns = 0;
  uint8_t reply_proto = 0;
  const uint8_t* attrs = msg + attrs_at;
  const size_t attrs_len = len > attrs_at ? len - attrs_at : 0;

  bool ok = ForEachAttr(attrs, attrs_len, [&](uint16_t at, const uint8_t* v, size_t n) {
    switch (at) {
      case CTA_TUPLE_ORIG:
        return has_orig = ParseTuple(v, n, family, &r.orig, &r.proto);
      case CTA_TUPLE_REPLY:
        return has_reply = ParseTuple(v, n, family, &r.reply, &reply_proto);
      case CTA_STATUS:
        return Be32(v, n, &r.status);
      case CTA_PROTOINFO:
        return ParseProtoInfo(v, n, &r);
      case CTA_MARK:
        r.flags |= kHasMark;
        return Be32(v, n, &r.mark);
      case CTA_ID:
        return Be32(v, n, &r.id);
      case CTA_ZONE:
        r.flags |= kHasZone;
        return Be16(v, n, &r.zone);
      case CTA_COUNTERS_ORIG:
      case CTA_COUNTERS_REPLY: {
        const bool orig = at == CTA_COUNTERS_ORIG;
        uint64_t* packets = orig ? &r.orig_packets : &r.reply_packets;
        uint64_t* bytes = orig ? &r.orig_bytes : &r.reply_bytes;
        r.flags |= kHasCounters;
        return ForEachAttr(v, n, [&](uint16_t ct, const uint8_t* a, size_t an) {
          return Counter(ct, a, an, packets, bytes);
        });
      }
      case CTA_TIMESTAMP:
        return ForEachAttr(v, n, [&](uint16_t ts, const uint8_t* a, size_t an) {
          if (ts == CTA_TIMESTAMP_START) {
            r.flags |= kHasStart;
            return Be64(a, an, &start_ns);
          }
          if (ts == CTA_TIMESTAMP_STOP) {
            has_stop = true;
            return Be64(a, an, &stop_ns);
          }
          return true;
        });
      default:
        return true;
    }
  });
  if (!ok || !has_orig || !has_reply) return Parsed::kMalformed;

  r.start_us = start_ns / 1000;
  if (type == kDestroy && has_stop && stop_ns != 0) {
    r.time_us = stop_ns / 1000;
    r.flags |= kTimeKernel;
  } else {
    r.time_us = now_us;
  }
  return Parsed::kRecord;
}

int DumpEndError(const uint8_t* msg, size_t len) {
  nlmsghdr h;
  if (len < sizeof h) return EPROTO;
  std::memcpy(&h, msg, sizeof h);
  if (h.nlmsg_type != NLMSG_ERROR) return 0;
  nlmsgerr e;
  if (len < NLMSG_LENGTH(sizeof e)) return EPROTO;
  std::memcpy(&e, msg + NLMSG_HDRLEN, sizeof e);
  // -errno, or 0 for an ack. Negating INT_MIN would overflow (the fuzzer found it: corpus
  // regress-nlmsgerr-int-min.bin); a positive value is not an errno either.
  if (e.error > 0 || e.error == INT_MIN) return EPROTO;
  return -e.error;
}

}  // namespace ct
