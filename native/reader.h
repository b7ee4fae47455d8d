// The netlink reader: event and dump sockets, a dedicated thread, records packed into batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "record.h"

namespace ct {

constexpr uint32_t kBatchRecords = 1024;  // hand a batch over when it holds this many...
constexpr int kBatchMillis = 20;          // ...or when its first record is this old
constexpr int kStopDrainMillis = 1000;    // at stop, drain what the socket holds for at most this
constexpr int kCoalesceMicros = 1000;     // after a small drain, let events accumulate this long,
constexpr int kCoalesceMinBuffer = 1 << 20;  // when the granted buffer can absorb it

// A batch of records plus the loss counted since the previous delivered batch. When `error`
// is set it is a notice of a fatal reader error instead (errno value and failing call).
// When `dump_done` is set, the table dump whose SNAPSHOT records this batch ends has finished:
// `dump_entries` records in all, or `dump_error` (an errno value from NLMSG_ERROR).
struct Batch {
  std::unique_ptr<Record[]> records{new Record[kBatchRecords]};
  uint32_t count = 0;
  uint32_t enobufs = 0;    // ENOBUFS returned by recv: the kernel dropped events
  uint32_t drops = 0;      // the event socket's kernel drop counter (sk_drops) went up by this
  uint32_t dropped = 0;    // records dropped because JavaScript was too far behind
  uint32_t malformed = 0;  // netlink messages skipped because they did not parse
  bool dump_done = false;
  uint32_t dump_entries = 0;
  int dump_error = 0;
  int error = 0;
  const char* where = nullptr;
};

// Where batches go. Implemented by the N-API glue; called on the reader thread only.
class Sink {
 public:
  enum class Result { kDelivered, kBusy, kClosed };
  virtual ~Sink() = default;
  // True while Deliver(…, false) would return kBusy: the reader then leaves the dump socket
  // unread (the kernel waits) instead of dropping snapshot records.
  virtual bool Busy() const = 0;
  // kBusy (only when !force): too many batches in flight, the caller keeps the batch.
  // kClosed: the receiver is gone (environment teardown), stop reading.
  virtual Result Deliver(std::unique_ptr<Batch>& batch, bool force) = 0;
  // Called once, last, when the thread exits.
  virtual void Finish() = 0;
};

struct ReaderOptions {
  bool new_events = true;
  bool update_events = true;
  bool destroy_events = true;
  int buffer_size = 8 << 20;
  bool reliable = false;  // NETLINK_BROADCAST_ERROR
  // struct sock_filter[] in host byte order (recorder/bpf.ts builds it), attached to the event
  // socket with SO_ATTACH_FILTER before it joins the groups; empty: no filter.
  std::vector<uint8_t> filter;
};

class Reader {
 public:
  Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  // Opens the event socket (bound to the groups) and the dump socket. Returns 0 or an errno
  // value, with `*where` naming the call.
  int Open(const ReaderOptions& opts, const char** where);
  // Receive buffer size the kernel actually granted (getsockopt SO_RCVBUF).
  int buffer_size() const { return buffer_size_; }
  // NETLINK_BROADCAST_ERROR as the kernel reports it back.
  bool reliable() const { return reliable_; }
  // Inode of the event socket: its row in /proc/net/netlink.
  uint64_t socket_inode() const { return socket_inode_; }
  // 0 when the filter was attached (or none was given), else the errno of SO_ATTACH_FILTER: the
  // socket is open anyway and receives every event.
  int filter_error() const { return filter_error_; }
  // Datagrams read from the event socket so far (what a kernel filter spares the reader).
  uint64_t received() const { return received_.load(std::memory_order_relaxed); }
  // The event socket's kernel drop counter (SO_MEMINFO SK_MEMINFO_DROPS); after Join(), the
  // last value read. Main thread only.
  uint32_t Drops();
  // Sends a table dump request (IPCTNL_MSG_CT_GET, NLM_F_DUMP, AF_UNSPEC) on the dump socket;
  // the reader thread reads the answer. Returns 0 or an errno value. Main thread only, one dump
  // at a time: the caller waits for the batch with `dump_done` before the next. Sent through
  // RunPrivileged: from the keeper thread once privileges are dropped.
  int RequestDump();
  // Starts the reader thread; `sink` must outlive Join().
  void Start(Sink* sink);
  // Asks the thread to stop; with `drain`, it first reads what the socket already holds.
  void RequestStop(bool drain);
  // Waits for the thread, then closes the descriptors. Idempotent.
  void Join();

 private:
  void Run();
  void Close();

  int nl_fd_ = -1;
  int dump_fd_ = -1;
  int stop_fd_ = -1;
  int buffer_size_ = 0;
  bool reliable_ = false;
  uint64_t socket_inode_ = 0;
  int filter_error_ = 0;
  std::atomic<uint64_t> received_{0};
  uint32_t last_drops_ = 0;
  std::atomic<uint32_t> dump_seq_{0};  // sequence number of the current dump; 0: none yet
  std::atomic<bool> drain_on_stop_{true};
  Sink* sink_ = nullptr;
  std::thread thread_;
};

}  // namespace ct
