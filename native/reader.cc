// The reader thread: poll() on the netlink socket and a stop eventfd, recvmmsg, parse, batch.
#include "reader.h"

#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "parse.h"

namespace ct {
namespace {

constexpr unsigned kMsgs = 64;         // datagrams per recvmmsg: one conntrack event each
constexpr size_t kMsgSize = 8192;      // an event is a few hundred bytes

struct RxBuffers {
  alignas(8) uint8_t data[kMsgs][kMsgSize];
  iovec iov[kMsgs];
  sockaddr_nl from[kMsgs];
  mmsghdr msgs[kMsgs];

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

  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return fail("eventfd");
  return 0;
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
  if (nl_fd_ >= 0) close(nl_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  nl_fd_ = stop_fd_ = -1;
}

void Reader::Run() {
  auto rx = std::make_unique<RxBuffers>();
  auto batch = std::make_unique<Batch>();
  uint32_t enobufs = 0, dropped = 0, malformed = 0;
  int64_t deadline = -1;  // monotonic ms at which the pending batch is due; -1: nothing pending
  bool closed = false;
  int error = 0;
  const char* where = nullptr;

  auto arm = [&] {
    if (deadline < 0) deadline = NowMonoMs() + kBatchMillis;
  };
  auto flush = [&](bool force) {
    batch->enobufs = enobufs;
    batch->dropped = dropped;
    batch->malformed = malformed;
    deadline = -1;
    switch (sink_->Deliver(batch, force)) {
      case Sink::Result::kDelivered:
        enobufs = dropped = malformed = 0;
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
  // One recvmmsg. False when the socket is empty or on a fatal error.
  auto receive = [&]() -> bool {
    for (unsigned i = 0; i < kMsgs; i++) rx->msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_nl);
    int n = recvmmsg(nl_fd_, rx->msgs, kMsgs, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      if (errno == EINTR) return true;
      if (errno == ENOBUFS) {  // the kernel overran our buffer: events lost, keep reading
        enobufs++;
        arm();
        return true;
      }
      error = errno;
      where = "recvmmsg";
      return false;
    }
    const uint64_t now = NowRealtimeUs();
    for (int i = 0; i < n && !closed; i++) {
      const msghdr& h = rx->msgs[i].msg_hdr;
      if (rx->from[i].nl_pid != 0) continue;  // only the kernel speaks for conntrack
      if (h.msg_flags & MSG_TRUNC) {
        malformed++;
        arm();
        continue;
      }
      auto* nlh = reinterpret_cast<const nlmsghdr*>(rx->data[i]);
      int left = static_cast<int>(rx->msgs[i].msg_len);
      for (; NLMSG_OK(nlh, left) && !closed; nlh = NLMSG_NEXT(nlh, left)) {
        Record* slot = &batch->records[batch->count];
        switch (ParseMessage(reinterpret_cast<const uint8_t*>(nlh), nlh->nlmsg_len, now, slot)) {
          case Parsed::kRecord:
            batch->count++;
            arm();
            if (batch->count == kBatchRecords) flush(false);
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
    }
    return n > 0;
  };

  while (!closed && !error) {
    int timeout = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMonoMs()));
    pollfd fds[2] = {{nl_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready = poll(fds, 2, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      error = errno;
      where = "poll";
      break;
    }
    if (fds[1].revents) break;
    if (fds[0].revents) receive();
    if (deadline >= 0 && NowMonoMs() >= deadline) flush(false);
  }

  // Events the kernel queued before stop() are delivered: drain the socket, bounded in time.
  if (!closed && !error && drain_on_stop_) {
    const int64_t until = NowMonoMs() + kStopDrainMillis;
    while (!closed && !error && receive() && NowMonoMs() < until) {
    }
  }
  if (!closed && (batch->count || enobufs || dropped || malformed)) flush(true);
  if (!closed && error) {
    auto notice = std::make_unique<Batch>();
    notice->error = error;
    notice->where = where;
    sink_->Deliver(notice, true);
  }
  sink_->Finish();
}

}  // namespace ct
