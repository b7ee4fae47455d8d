// Netlink conntrack message → Record: a pure function with every length checked.
#pragma once

#include <cstddef>
#include <cstdint>

#include "record.h"

namespace ct {

enum class Parsed { kRecord, kSkip, kMalformed };

// Parses one netlink message (header included, `len` = nlmsg_len, already bounds-checked by the
// caller). kSkip: not a conntrack event or not IPv4/IPv6. kMalformed: a bad or missing attribute.
// `out` is fully written (zeroed first) only when the result is kRecord.
Parsed ParseMessage(const uint8_t* msg, size_t len, uint64_t now_us, Record* out);

// The NLMSG_DONE or NLMSG_ERROR message that ends a table dump (`len` = nlmsg_len, already
// bounds-checked): 0 when the dump completed (DONE, or an ERROR of 0, an ack), else the errno
// value the kernel reported; EPROTO when the error is truncated or not a negated errno.
int DumpEndError(const uint8_t* msg, size_t len);

}  // namespace ct
