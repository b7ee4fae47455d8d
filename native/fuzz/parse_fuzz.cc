// libFuzzer harness for native/parse.cc: one input is one netlink datagram as recv() returns it.
//
// Each input is fed twice. First it is walked message by message the way native/reader.cc's
// parse lambda walks a datagram (NLMSG_OK / NLMSG_NEXT; as the event socket, then as the dump
// socket, where NLMSG_DONE and NLMSG_ERROR go to DumpEndError), each message copied into a
// buffer of exactly nlmsg_len bytes so that AddressSanitizer sees any read past that length. Then the
// whole input goes to ParseMessage as one message, whatever nlmsg_len says, as the parser must
// rely on `len` only. Beyond "no crash, no leak, no UB", every record must keep the promises
// native/record.h and parse.h make: checked below, any broken one aborts.
#include <linux/netlink.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "../parse.h"
#include "../record.h"

namespace {

constexpr uint64_t kNow = 1'700'000'000'000'000;  // any receive time, in µs

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "parse_fuzz: broken promise: %s (line %d)\n", #cond, \
                   __LINE__);                                                    \
      std::abort();                                                              \
    }                                                                            \
  } while (0)

bool Zero(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; i++) {
    if (b[i] != 0) return false;
  }
  return true;
}

void CheckTuple(const ct::Tuple& t, uint8_t family) {
  // An IPv4 address fills the first 4 bytes; the rest stays 0 (the journal stores 16).
  if (family == 4) CHECK(Zero(t.src + 4, 12) && Zero(t.dst + 4, 12));
}

// What a kRecord promises (native/record.h, native/parse.h).
void CheckRecord(const ct::Record& r) {
  CHECK(r.type == ct::kNew || r.type == ct::kUpdate || r.type == ct::kDestroy);
  CHECK(r.family == 4 || r.family == 6);
  CHECK((r.flags & ~uint16_t{0x3f}) == 0);
  CHECK(r.reserved == 0);
  CheckTuple(r.orig, r.family);
  CheckTuple(r.reply, r.family);
  if (!(r.flags & ct::kHasTcpState)) CHECK(r.tcp_state == 0);
  if (!(r.flags & ct::kHasZone)) CHECK(r.zone == 0);
  if (!(r.flags & ct::kHasMark)) CHECK(r.mark == 0);
  if (!(r.flags & ct::kHasStart)) CHECK(r.start_us == 0);
  if (!(r.flags & ct::kHasCounters)) {
    CHECK(r.orig_packets == 0 && r.orig_bytes == 0 && r.reply_packets == 0 && r.reply_bytes == 0);
  }
  // The kernel's stop time only on DESTROY; otherwise the receive time given.
  if (r.flags & ct::kTimeKernel) {
    CHECK(r.type == ct::kDestroy);
  } else {
    CHECK(r.time_us == kNow);
  }
}

// Parses `len` bytes at `msg` (an exact-size heap copy) twice, over different garbage: a record
// must come out byte for byte the same (every byte written, nothing of `out` read). Returns
// whether it was a record.
bool ParseOne(const uint8_t* msg, size_t len) {
  ct::Record a, b;
  std::memset(&a, 0xa5, sizeof a);
  std::memset(&b, 0x5a, sizeof b);
  const ct::Parsed pa = ct::ParseMessage(msg, len, kNow, &a);
  const ct::Parsed pb = ct::ParseMessage(msg, len, kNow, &b);
  CHECK(pa == pb);
  CHECK(pa == ct::Parsed::kRecord || pa == ct::Parsed::kSkip || pa == ct::Parsed::kMalformed);
  if (pa != ct::Parsed::kRecord) return false;
  CHECK(std::memcmp(&a, &b, sizeof a) == 0);
  CheckRecord(a);
  return true;
}

// native/reader.cc's walk of one datagram; `snapshot`: as the dump socket, where NLMSG_DONE and
// NLMSG_ERROR end the dump (the sequence number check is left out: every message is the dump's).
void Walk(const uint8_t* data, size_t size, bool snapshot) {
  // recvmmsg hands the reader an int length and an aligned buffer; so does this copy.
  std::unique_ptr<nlmsghdr[]> aligned(new nlmsghdr[size / sizeof(nlmsghdr) + 1]);
  std::memcpy(aligned.get(), data, size);
  auto* nlh = aligned.get();
  int left = static_cast<int>(size);
  size_t messages = 0, records = 0;
  for (; NLMSG_OK(nlh, left); nlh = NLMSG_NEXT(nlh, left)) {
    messages++;
    CHECK(nlh->nlmsg_len >= sizeof(nlmsghdr) && nlh->nlmsg_len <= size);
    const size_t len = nlh->nlmsg_len;
    std::unique_ptr<uint8_t[]> msg(new uint8_t[len]);
    std::memcpy(msg.get(), nlh, len);
    if (snapshot && (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR)) {
      const int err = ct::DumpEndError(msg.get(), len);
      CHECK(err >= 0);  // an errno value for the dump's promise, never negative
      if (nlh->nlmsg_type == NLMSG_DONE) CHECK(err == 0);
      continue;
    }
    if (ParseOne(msg.get(), len)) records++;
  }
  CHECK(records <= messages);
  // NLMSG_NEXT subtracts the padded length: a last message whose padding the datagram lacks
  // leaves `left` slightly negative, which the reader treats as "no trailing bytes".
  CHECK(left > -static_cast<int>(NLMSG_ALIGNTO) && left <= static_cast<int>(size));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The reader's receive buffer bounds a datagram; an int holds its length.
  if (size > (1u << 20)) return -1;
  Walk(data, size, false);
  Walk(data, size, true);
  std::unique_ptr<uint8_t[]> whole(new uint8_t[size > 0 ? size : 1]);
  if (size > 0) std::memcpy(whole.get(), data, size);
  ParseOne(whole.get(), size);
  return 0;
}
