// The netlink reader: socket setup, a dedicated thread, records packed into batches.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "record.h"

namespace ct {

constexpr uint32_t kBatchRecords = 1024;  // hand a batch over when it holds this many...
constexpr int kBatchMillis = 20;          // ...or when its first record is this old
constexpr int kStopDrainMillis = 1000;    // at stop, drain what the socket holds for at most this

// A batch of records plus the loss counted since the previous delivered batch. When `error`
// is set it is a notice of a fatal reader error instead (errno value and failing call).
struct Batch {
  std::unique_ptr<Record[]> records{new Record[kBatchRecords]};
  uint32_t count = 0;
  uint32_t enobufs = 0;    // ENOBUFS returned by recv: the kernel dropped events
  uint32_t dropped = 0;    // records dropped because JavaScript was too far behind
  uint32_t malformed = 0;  // netlink messages skipped because they did not parse
  int error = 0;
  const char* where = nullptr;
};

// Where batches go. Implemented by the N-API glue; called on the reader thread only.
class Sink {
 public:
  enum class Result { kDelivered, kBusy, kClosed };
  virtual ~Sink() = default;
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
};

class Reader {
 public:
  Reader() = default;
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  ~Reader();

  // Opens and binds the socket. Returns 0 or an errno value, with `*where` naming the call.
  int Open(const ReaderOptions& opts, const char** where);
  // Receive buffer size the kernel actually granted (getsockopt SO_RCVBUF).
  int buffer_size() const { return buffer_size_; }
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
  int stop_fd_ = -1;
  int buffer_size_ = 0;
  std::atomic<bool> drain_on_stop_{true};
  Sink* sink_ = nullptr;
  std::thread thread_;
};

}  // namespace ct
