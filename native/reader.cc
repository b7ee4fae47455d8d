// The reader thread: poll() on the event socket, the dump socket and a stop eventfd; recvmmsg,
// parse, batch.
#include "reader.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "parse.h"
#include "privilege.h"

namespace ct {
namespace {

constexpr unsigned kMsgs = 256;        // datagrams per recvmmsg: one conntrack event each
constexpr size_t kMsgSize = 4096;      // an event is a few hundred bytes
constexpr unsigned kDrainRounds = 16;  // recvmmsg calls per wake-up before looking at stop again
constexpr unsigned kSmallDrain = 32;   // fewer datagrams than this in a wake-up: coalesce
constexpr size_t kDumpSize = 65536;    // the kernel fills a dump datagram up to 32 KiB
constexpr unsigned kDumpReads = 8;     // dump datagrams per wake-up, so events keep draining
constexpr int kBusyPollMillis = 5;     // while JavaScript lags, look again this often

struct RxBuffers {
  alignas(8) uint8_t data[kMsgs][kMsgSize];
  iovec iov[kMsgs];
  sockaddr_nl from[kMsgs];
  mmsghdr msgs[kMsgs];
  alignas(8) uint8_t dump[kDumpSize];

  RxBuffers() {
    std::memset(msgs, 0, sizeof msgs);
    for (unsigned i = 0; i < kMsgs; i++) {
      iov[i] = {data[i], kMsgSize};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
    }
  }
};

uint64_t NowRealtimeUs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
}

int64_t NowMonoMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint32_t GroupBit(unsigned group) { return 1u << (group - 1); }

// sk_drops of a socket: what /proc/net/netlink shows as Drops, without parsing it.
bool ReadDrops(int fd, uint32_t* drops) {
  uint32_t mem[SK_MEMINFO_VARS];
  socklen_t len = sizeof mem;
  if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 || len <= SK_MEMINFO_DROPS * 4) {
    return false;
  }
  *drops = mem[SK_MEMINFO_DROPS];
  return true;
}

}  // namespace

Reader::~Reader() {
  RequestStop(false);
  Join();
}

int Reader::Open(const ReaderOptions& opts, const char** where) {
  auto fail = [&](const char* call) {
    int err = errno;
    *where = call;
    Close();
    return err;
  };
  nl_fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (nl_fd_ < 0) return fail("socket(NETLINK_NETFILTER)");

  // SO_RCVBUFFORCE (CAP_NET_ADMIN) ignores net.core.rmem_max; SO_RCVBUF is capped by it.
  int size = opts.buffer_size;
  if (setsockopt(nl_fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0 &&
      setsockopt(nl_fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size) < 0) {
    return fail("setsockopt(SO_RCVBUF)");
  }
  if (opts.reliable) {
    int one = 1;
    if (setsockopt(nl_fd_, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &one, sizeof one) < 0) {
      return fail("setsockopt(NETLINK_BROADCAST_ERROR)");
    }
  }

  // Before bind: no event reaches the socket unfiltered. A refused filter is not fatal: the
  // caller filters in user space and says so.
  if (!opts.filter.empty()) {
    sock_fprog prog;
    prog.len = static_cast<unsigned short>(opts.filter.size() / sizeof(sock_filter));
    prog.filter = reinterpret_cast<sock_filter*>(const_cast<uint8_t*>(opts.filter.data()));
    if (opts.filter.size() % sizeof(sock_filter) != 0 ||
        opts.filter.size() > 0xffff * sizeof(sock_filter)) {
      filter_error_ = EINVAL;
    } else if (setsockopt(nl_fd_, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0) {
      filter_error_ = errno;
    }
  }

  sockaddr_nl addr;
  std::memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  if (opts.new_events) addr.nl_groups |= GroupBit(NFNLGRP_CONNTRACK_NEW);
  if (opts.update_events) addr.nl_groups |= GroupBit(NFNLGRP_CONNTRACK_UPDATE);
  if (opts.destroy_events) addr.nl_groups |= GroupBit(NFNLGRP_CONNTRACK_DESTROY);
  if (bind(nl_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return fail("bind");

  socklen_t len = sizeof buffer_size_;
  if (getsockopt(nl_fd_, SOL_SOCKET, SO_RCVBUF, &buffer_size_, &len) < 0) {
    return fail("getsockopt(SO_RCVBUF)");
  }
  int broadcast_error = 0;
  len = sizeof broadcast_error;
  if (getsockopt(nl_fd_, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &broadcast_error, &len) < 0) {
    return fail("getsockopt(NETLINK_BROADCAST_ERROR)");
  }
  reliable_ = broadcast_error != 0;
  struct stat st;
  if (fstat(nl_fd_, &st) < 0) return fail("fstat");
  socket_inode_ = st.st_ino;

  // A second socket for table dumps: the event socket keeps draining while a dump runs.
  dump_fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (dump_fd_ < 0) return fail("socket(NETLINK_NETFILTER) for dumps");

  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return fail("eventfd");
  return 0;
}

uint32_t Reader::Drops() {
  if (nl_fd_ >= 0) ReadDrops(nl_fd_, &last_drops_);
  return last_drops_;
}

int Reader::RequestDump() {
  if (dump_fd_ < 0) return EBADF;
  struct {
    nlmsghdr h;
    nfgenmsg g;
  } req;
  static_assert(sizeof req == NLMSG_LENGTH(sizeof(nfgenmsg)), "dump request layout");
  std::memset(&req, 0, sizeof req);
  uint32_t seq = dump_seq_.load() + 1;
  if (seq == 0) seq = 1;  // 0 means "no dump"
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.h.nlmsg_seq = seq;
  req.g.nfgen_family = AF_UNSPEC;  // both families
  req.g.version = NFNETLINK_V0;
  // The reader thread must know the sequence before the first answer can arrive.
  dump_seq_.store(seq);
  sockaddr_nl kernel;
  std::memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  // The kernel checks CAP_NET_ADMIN here, against the sending thread's credentials: after
  // DropPrivileges only the keeper thread has it, so the request is sent from there.
  return RunPrivileged([&] {
    while (sendto(dump_fd_, &req, sizeof req, 0, reinterpret_cast<sockaddr*>(&kernel),
                  sizeof kernel) < 0) {
      if (errno != EINTR) return errno;
    }
    return 0;
  });
}

void Reader::Start(Sink* sink) {
  sink_ = sink;
  // Signals belong to Node's main thread: the reader starts with all of them blocked.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // A std::thread, not the libuv pool: a blocking reader would pin a pool thread for the run.
  thread_ = std::thread(&Reader::Run, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Reader::RequestStop(bool drain) {
  if (stop_fd_ < 0) return;
  drain_on_stop_ = drain;
  uint64_t one = 1;
  while (write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

void Reader::Join() {
  if (thread_.joinable()) thread_.join();
  Close();
}

void Reader::Close() {
  if (nl_fd_ >= 0) {
    ReadDrops(nl_fd_, &last_drops_);
    close(nl_fd_);
  }
  if (dump_fd_ >= 0) close(dump_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  nl_fd_ = dump_fd_ = stop_fd_ = -1;
}

void Reader::Run() {
  pthread_setname_np(pthread_self(), "ct-reader");  // to tell it apart in /proc/PID/task
  auto rx = std::make_unique<RxBuffers>();
  auto batch = std::make_unique<Batch>();
  uint32_t enobufs = 0, dropped = 0, malformed = 0;
  uint32_t drops_reported = 0;  // sk_drops starts at 0 with the socket: batches add up to it
  int64_t deadline = -1;  // monotonic ms at which the pending batch is due; -1: nothing pending
  bool closed = false;
  int error = 0;
  const char* where = nullptr;
  uint32_t dump_seq = 0;  // the dump being read, and its SNAPSHOT records so far
  uint32_t dump_entries = 0;
  const bool coalesce = buffer_size_ >= kCoalesceMinBuffer;

  auto arm = [&] {
    if (deadline < 0) deadline = NowMonoMs() + kBatchMillis;
  };
  auto flush = [&](bool force) {
    uint32_t drops = drops_reported;
    ReadDrops(nl_fd_, &drops);
    batch->enobufs = enobufs;
    batch->drops = drops - drops_reported;
    batch->dropped = dropped;
    batch->malformed = malformed;
    deadline = -1;
    switch (sink_->Deliver(batch, force)) {
      case Sink::Result::kDelivered:
        enobufs = dropped = malformed = 0;
        drops_reported = drops;
        batch = std::make_unique<Batch>();
        break;
      case Sink::Result::kBusy:
        // JavaScript is too far behind: the records are lost, the count is not.
        dropped += batch->count;
        batch->count = 0;
        arm();
        break;
      case Sink::Result::kClosed:
        closed = true;
        break;
    }
  };
  // Parses one datagram's netlink messages into the batch; `snapshot` marks dump entries.
  auto parse = [&](const uint8_t* data, int left, uint64_t now, bool snapshot) {
    auto* nlh = reinterpret_cast<const nlmsghdr*>(data);
    for (; NLMSG_OK(nlh, left) && !closed; nlh = NLMSG_NEXT(nlh, left)) {
      if (snapshot) {
        if (nlh->nlmsg_seq != dump_seq) continue;
        if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR) {
          const int err = DumpEndError(reinterpret_cast<const uint8_t*>(nlh), nlh->nlmsg_len);
          batch->dump_done = true;
          batch->dump_entries = dump_entries;
          batch->dump_error = err;
          flush(true);
          dump_seq = 0;
          continue;
        }
      }
      Record* slot = &batch->records[batch->count];
      switch (ParseMessage(reinterpret_cast<const uint8_t*>(nlh), nlh->nlmsg_len, now, slot)) {
        case Parsed::kRecord:
          if (snapshot) {
            slot->type = kSnapshot;
            dump_entries++;
          }
          batch->count++;
          arm();
          // Snapshot records are never dropped at the hand-over: dump reads stop while
          // JavaScript lags (Busy), so forcing adds at most the batches of one wake-up.
          if (batch->count == kBatchRecords) flush(snapshot);
          break;
        case Parsed::kMalformed:
          malformed++;
          arm();
          break;
        case Parsed::kSkip:
          break;
      }
    }
    if (left > 0 && !closed) {  // trailing bytes that are not a whole message
      malformed++;
      arm();
    }
  };
  // One recvmmsg on the event socket: the number of datagrams read, 0 when the socket is
  // empty, -1 on a fatal error.
  auto receive = [&]() -> int {
    for (unsigned i = 0; i < kMsgs; i++) rx->msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_nl);
    int n = recvmmsg(nl_fd_, rx->msgs, kMsgs, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      if (errno == EINTR) return 1;
      if (errno == ENOBUFS) {  // the kernel overran our buffer: events lost, keep reading
        enobufs++;
        arm();
        return static_cast<int>(kMsgs);  // the buffer was full: drain on, no pause
      }
      error = errno;
      where = "recvmmsg";
      return -1;
    }
    received_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    const uint64_t now = NowRealtimeUs();
    for (int i = 0; i < n && !closed; i++) {
      const msghdr& h = rx->msgs[i].msg_hdr;
      if (rx->from[i].nl_pid != 0) continue;  // only the kernel speaks for conntrack
      if (h.msg_flags & MSG_TRUNC) {
        malformed++;
        arm();
        continue;
      }
      parse(rx->data[i], static_cast<int>(rx->msgs[i].msg_len), now, false);
    }
    return n;
  };
  // Reads up to kDumpReads datagrams of the current dump. A receive error ends the dump, not
  // the capture.
  auto receive_dump = [&] {
    for (unsigned round = 0; round < kDumpReads && !closed && !sink_->Busy(); round++) {
      sockaddr_nl from;
      iovec iov = {rx->dump, kDumpSize};
      msghdr h;
      std::memset(&h, 0, sizeof h);
      h.msg_name = &from;
      h.msg_namelen = sizeof from;
      h.msg_iov = &iov;
      h.msg_iovlen = 1;
      ssize_t n = recvmsg(dump_fd_, &h, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK && dump_seq != 0) {
          batch->dump_done = true;
          batch->dump_entries = dump_entries;
          batch->dump_error = errno;
          flush(true);
          dump_seq = 0;
        }
        return;
      }
      if (from.nl_pid != 0) continue;
      const uint32_t current = dump_seq_.load();
      if (current != dump_seq) {  // the first answer to a new request
        dump_seq = current;
        dump_entries = 0;
      }
      if (h.msg_flags & MSG_TRUNC) {
        malformed++;
        arm();
        continue;
      }
      parse(rx->dump, static_cast<int>(n), NowRealtimeUs(), true);
    }
  };

  while (!closed && !error) {
    int timeout = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMonoMs()));
    // While JavaScript lags, the dump socket is left unread: the kernel holds the rest of the
    // dump until it is read, so no snapshot record is dropped.
    const bool busy = sink_->Busy();
    if (busy && (timeout < 0 || timeout > kBusyPollMillis)) timeout = kBusyPollMillis;
    pollfd fds[3] = {{nl_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}, {busy ? -1 : dump_fd_, POLLIN, 0}};
    int ready = poll(fds, 3, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      error = errno;
      where = "poll";
      break;
    }
    if (fds[1].revents) break;
    unsigned drained = 0;
    if (fds[0].revents) {
      // Drain until a short read: one poll per burst, not per datagram.
      for (unsigned round = 0; round < kDrainRounds && !closed; round++) {
        int n = receive();
        if (n < 0) break;
        drained += static_cast<unsigned>(n);
        if (n < static_cast<int>(kMsgs)) break;
      }
    }
    if (fds[2].revents && !error) receive_dump();
    if (deadline >= 0 && NowMonoMs() >= deadline) flush(false);
    if (coalesce && dump_seq == 0 && drained > 0 && drained < kSmallDrain && !closed && !error) {
      // Events trickle in one datagram at a time: waiting a moment lets them accumulate (the
      // receive buffer absorbs it), so the next recvmmsg takes many for one wake-up. The wait
      // ends at once when stop() is called; a running dump is not slowed down.
      const timespec pause = {0, kCoalesceMicros * 1000L};
      pollfd stop = {stop_fd_, POLLIN, 0};
      ppoll(&stop, 1, &pause, nullptr);
    }
  }

  // Events the kernel queued before stop() are delivered: drain the socket, bounded in time.
  if (!closed && !error && drain_on_stop_) {
    const int64_t until = NowMonoMs() + kStopDrainMillis;
    while (!closed && !error && receive() > 0 && NowMonoMs() < until) {
    }
  }
  uint32_t drops = drops_reported;
  ReadDrops(nl_fd_, &drops);
  if (!closed && (batch->count || enobufs || drops != drops_reported || dropped || malformed)) {
    flush(true);
  }
  if (!closed && error) {
    auto notice = std::make_unique<Batch>();
    notice->error = error;
    notice->where = where;
    sink_->Deliver(notice, true);
  }
  sink_->Finish();
}

}  // namespace ct
