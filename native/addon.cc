// N-API glue: layout(), start(options, onBatch, onError) → { bufferSize, reliable, socketInode,
// filterError, stop(), dump(), drops(), received() }; getpwnam(), getpwuid(), dropPrivileges(), setConntrackEvents(),
// joinNetns(), sendDatagram(), interfaceAddresses().
#include <fcntl.h>
#include <napi.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include "interfaces.h"
#include "privilege.h"
#include "reader.h"
#include "record.h"

namespace ct {
namespace {

// JavaScript may lag this many batches (× kBatchRecords records) before records are dropped.
constexpr int kMaxInFlight = 256;

std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#endif
  return "E" + std::to_string(err);
}

Napi::Error ErrnoError(Napi::Env env, int err, const char* where) {
  std::string code = ErrnoName(err);
  Napi::Error e =
      Napi::Error::New(env, std::string(where) + ": " + code + " (" + strerror(err) + ")");
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, where));
  return e;
}

struct Session;
void CallJs(Napi::Env env, Napi::Function on_batch, Session* s, Batch* batch);
using Tsfn = Napi::TypedThreadSafeFunction<Session, Batch, CallJs>;

// Owned jointly by the thread-safe function and the capture's function objects (stop, dump,
// drops); the last of their finalizers deletes it (all run on the main thread).
struct Session final : Sink {
  Reader reader;
  Tsfn tsfn;
  Napi::FunctionReference on_error;
  std::unique_ptr<Napi::Promise::Deferred> stopped;
  std::unique_ptr<Napi::Promise::Deferred> dump;  // the running table dump, if any
  std::atomic<int> in_flight{0};
  bool finished = false;
  int owners = 1;

  bool Busy() const override {
    return in_flight.load(std::memory_order_relaxed) >= kMaxInFlight;
  }

  Result Deliver(std::unique_ptr<Batch>& batch, bool force) override {
    if (!force && in_flight.load(std::memory_order_relaxed) >= kMaxInFlight) return Result::kBusy;
    in_flight.fetch_add(1, std::memory_order_relaxed);
    if (tsfn.NonBlockingCall(batch.get()) != napi_ok) {
      in_flight.fetch_sub(1, std::memory_order_relaxed);
      return Result::kClosed;
    }
    batch.release();
    return Result::kDelivered;
  }

  void Finish() override { tsfn.Release(); }
};

void Disown(Session* s) {
  if (--s->owners == 0) delete s;
}

// Settles the running dump: resolved with the entry count, or rejected with the errno error.
void SettleDump(Napi::Env env, Session* s, int err, uint32_t entries) {
  std::unique_ptr<Napi::Promise::Deferred> dump = std::move(s->dump);
  if (!dump) return;
  if (err != 0) {
    dump->Reject(ErrnoError(env, err, "dump").Value());
  } else {
    dump->Resolve(Napi::Number::New(env, entries));
  }
}

void CallJs(Napi::Env env, Napi::Function on_batch, Session* s, Batch* raw) {
  std::unique_ptr<Batch> batch(raw);
  s->in_flight.fetch_sub(1, std::memory_order_relaxed);
  if (env == nullptr) return;  // environment teardown: nothing to call
  if (batch->error != 0) {
    if (!s->on_error.IsEmpty()) s->on_error.Call({ErrnoError(env, batch->error, batch->where).Value()});
    return;
  }
  const uint32_t count = batch->count;
  const bool dump_done = batch->dump_done;
  const int dump_error = batch->dump_error;
  const uint32_t dump_entries = batch->dump_entries;
  // A batch that only ends a dump may carry nothing for onBatch.
  const bool empty = count == 0 && batch->enobufs == 0 && batch->drops == 0 &&
                     batch->dropped == 0 && batch->malformed == 0;
  if (!(dump_done && empty)) {
    const size_t bytes = size_t{count} * sizeof(Record);
    Napi::ArrayBuffer records = Napi::ArrayBuffer::New(env, bytes);
    std::memcpy(records.Data(), batch->records.get(), bytes);
    Napi::Object info = Napi::Object::New(env);
    info.Set("enobufs", batch->enobufs);
    info.Set("drops", batch->drops);
    info.Set("dropped", batch->dropped);
    info.Set("malformed", batch->malformed);
    batch.reset();
    try {
      on_batch.Call({records, Napi::Number::New(env, count), info});
    } catch (...) {
      // The dump still ends: its promise must not wait forever on a throwing callback.
      if (dump_done) SettleDump(env, s, dump_error, dump_entries);
      throw;
    }
  }
  // After onBatch has had the dump's last records.
  if (dump_done) SettleDump(env, s, dump_error, dump_entries);
}

// Runs when the last batch has been delivered after the thread released the function, or at
// environment teardown while the thread may still run: it must signal the thread before joining.
void Finalize(Napi::Env env, void*, Session* s) {
  s->reader.RequestStop(false);
  s->reader.Join();
  s->finished = true;
  s->on_error.Reset();
  if (s->dump) {
    Napi::Error e = Napi::Error::New(env, "the capture stopped before the table dump completed");
    e.Set("code", Napi::String::New(env, "ECANCELED"));
    s->dump->Reject(e.Value());
    s->dump.reset();
  }
  if (s->stopped) s->stopped->Resolve(env.Undefined());
  Disown(s);
}

Napi::Value Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* s = static_cast<Session*>(info.Data());
  if (s->finished) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  if (!s->stopped) {
    s->stopped = std::make_unique<Napi::Promise::Deferred>(env);
    s->reader.RequestStop(true);
  }
  return s->stopped->Promise();
}

// dump() → Promise<number>: one dump at a time; a second concurrent call rejects with EBUSY
// (native/index.ts queues calls, so it never sees that).
Napi::Value Dump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* s = static_cast<Session*>(info.Data());
  auto deferred = Napi::Promise::Deferred::New(env);
  auto reject = [&](const char* code, const char* message) {
    Napi::Error e = Napi::Error::New(env, message);
    e.Set("code", Napi::String::New(env, code));
    deferred.Reject(e.Value());
    return deferred.Promise();
  };
  if (s->finished || s->stopped) return reject("ECANCELED", "the capture is stopped");
  if (s->dump) return reject("EBUSY", "a table dump is already running on this capture");
  if (int err = s->reader.RequestDump()) {
    deferred.Reject(ErrnoError(env, err, "sendto(dump)").Value());
    return deferred.Promise();
  }
  s->dump = std::make_unique<Napi::Promise::Deferred>(deferred);
  return deferred.Promise();
}

Napi::Value Drops(const Napi::CallbackInfo& info) {
  auto* s = static_cast<Session*>(info.Data());
  return Napi::Number::New(info.Env(), s->reader.Drops());
}

Napi::Value Received(const Napi::CallbackInfo& info) {
  auto* s = static_cast<Session*>(info.Data());
  return Napi::Number::New(info.Env(), double(s->reader.received()));
}

// A function of the capture object; it keeps the session alive as long as it lives.
Napi::Function Method(Napi::Env env, const char* name, Napi::Function::Callback cb, Session* s) {
  Napi::Function f = Napi::Function::New(env, cb, name, s);
  s->owners++;
  f.AddFinalizer([](Napi::Env, Session* owner) { Disown(owner); }, s);
  return f;
}

bool BoolOption(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() || v.ToBoolean().Value();
}

// start({ new, update, destroy, bufferSize, reliable, filter }, onBatch, onError). Options are validated in
// native/index.ts; here only their types are checked.
Napi::Value Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[1].IsFunction() || !info[2].IsFunction()) {
    throw Napi::TypeError::New(env, "start(options, onBatch, onError)");
  }
  Napi::Object o = info[0].As<Napi::Object>();
  ReaderOptions opts;
  opts.new_events = BoolOption(o, "new");
  opts.update_events = BoolOption(o, "update");
  opts.destroy_events = BoolOption(o, "destroy");
  Napi::Value size = o.Get("bufferSize");
  if (size.IsNumber()) opts.buffer_size = size.As<Napi::Number>().Int32Value();
  opts.reliable = o.Get("reliable").ToBoolean().Value();
  Napi::Value filter = o.Get("filter");
  if (filter.IsTypedArray() && filter.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array) {
    Napi::Uint8Array bytes = filter.As<Napi::Uint8Array>();
    opts.filter.assign(bytes.Data(), bytes.Data() + bytes.ByteLength());
  }

  auto session = std::make_unique<Session>();
  const char* where = nullptr;
  if (int err = session->reader.Open(opts, &where)) throw ErrnoError(env, err, where);

  Session* s = session.get();
  s->on_error = Napi::Persistent(info[2].As<Napi::Function>());
  s->tsfn = Tsfn::New(env, info[1].As<Napi::Function>(), "ct_native.capture", 0, 1, s, Finalize,
                      static_cast<void*>(nullptr));
  session.release();  // from here the finalizers own it
  try {
    s->reader.Start(s);
  } catch (const std::system_error& e) {
    s->tsfn.Release();  // the only owner: its finalizer deletes the session
    throw Napi::Error::New(env, std::string("cannot start the conntrack reader thread: ") + e.what());
  }

  Napi::Object capture = Napi::Object::New(env);
  capture.Set("bufferSize", Napi::Number::New(env, s->reader.buffer_size()));
  capture.Set("reliable", Napi::Boolean::New(env, s->reader.reliable()));
  capture.Set("socketInode", Napi::Number::New(env, double(s->reader.socket_inode())));
  if (int err = s->reader.filter_error()) {
    capture.Set("filterError", ErrnoError(env, err, "setsockopt(SO_ATTACH_FILTER)").Value());
  }
  capture.Set("stop", Method(env, "stop", Stop, s));
  capture.Set("dump", Method(env, "dump", Dump, s));
  capture.Set("drops", Method(env, "drops", Drops, s));
  capture.Set("received", Method(env, "received", Received, s));
  return capture;
}

Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object fields = Napi::Object::New(env);
  for (const FieldDesc& f : kFields) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("offset", Napi::Number::New(env, double(f.offset)));
    d.Set("size", Napi::Number::New(env, double(f.size)));
    fields.Set(f.name, d);
  }
  Napi::Object flags = Napi::Object::New(env);
  flags.Set("TIME_KERNEL", uint32_t{kTimeKernel});
  flags.Set("HAS_START", uint32_t{kHasStart});
  flags.Set("HAS_COUNTERS", uint32_t{kHasCounters});
  flags.Set("HAS_TCP_STATE", uint32_t{kHasTcpState});
  flags.Set("HAS_MARK", uint32_t{kHasMark});
  flags.Set("HAS_ZONE", uint32_t{kHasZone});
  Napi::Object types = Napi::Object::New(env);
  types.Set("NEW", uint32_t{kNew});
  types.Set("UPDATE", uint32_t{kUpdate});
  types.Set("DESTROY", uint32_t{kDestroy});
  types.Set("SNAPSHOT", uint32_t{kSnapshot});

  Napi::Object layout = Napi::Object::New(env);
  layout.Set("recordSize", Napi::Number::New(env, double(sizeof(Record))));
  layout.Set("batchRecords", kBatchRecords);
  layout.Set("batchMillis", kBatchMillis);
  layout.Set("maxInFlight", kMaxInFlight);
  layout.Set("fields", fields);
  layout.Set("flags", flags);
  layout.Set("eventTypes", types);
  return layout;
}

Napi::Value PasswdValue(Napi::Env env, int err, const PasswdEntry& pw, const char* where) {
  if (err != 0) throw ErrnoError(env, err, where);
  if (!pw.found) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, pw.name));
  o.Set("uid", Napi::Number::New(env, double(pw.uid)));
  o.Set("gid", Napi::Number::New(env, double(pw.gid)));
  return o;
}

// getpwnam(name) → { name, uid, gid } | null
Napi::Value Getpwnam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "getpwnam(name)");
  PasswdEntry pw;
  int err = LookupUserName(info[0].As<Napi::String>().Utf8Value(), &pw);
  return PasswdValue(env, err, pw, "getpwnam_r");
}

// getpwuid(uid) → { name, uid, gid } | null
Napi::Value Getpwuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "getpwuid(uid)");
  PasswdEntry pw;
  int err = LookupUserId(uid_t(info[0].As<Napi::Number>().Uint32Value()), &pw);
  return PasswdValue(env, err, pw, "getpwuid_r");
}

// dropPrivileges(uid, gid) → { keeperTid, allNoNewPrivs }. Policy (who, when) is in
// recorder/privileges.ts.
Napi::Value DropPrivilegesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    throw Napi::TypeError::New(env, "dropPrivileges(uid, gid)");
  }
  DropResult r;
  const char* where = "dropPrivileges";
  int err = DropPrivileges(uid_t(info[0].As<Napi::Number>().Uint32Value()),
                           gid_t(info[1].As<Napi::Number>().Uint32Value()), &r, &where);
  if (err != 0) throw ErrnoError(env, err, where);
  Napi::Object o = Napi::Object::New(env);
  o.Set("keeperTid", Napi::Number::New(env, r.keeper_tid));
  o.Set("allNoNewPrivs", Napi::Boolean::New(env, r.all_no_new_privs));
  return o;
}

// The one sysctl the keeper writes, and nothing else: after the drop it is the only thread with
// CAP_NET_ADMIN, and a call taking a path would let JavaScript set any net.* sysctl (ip_forward,
// an interface's MTU) with it. Opened per call, from the thread that writes it: /proc/sys/net is
// the network namespace of the opener (the keeper is created after --netns joined).
constexpr char kConntrackEvents[] = "/proc/sys/net/netfilter/nf_conntrack_events";

// setConntrackEvents(value): writes 0, 1 or 2 (the kernel's range for nf_conntrack_events) into
// kConntrackEvents from the keeper thread. The range is checked here, not only in native/index.ts,
// so that no other value ever reaches the kept capability.
Napi::Value SetConntrackEvents(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "setConntrackEvents(value)");
  }
  // The double, not Uint32Value(): 2^32 + 1 must not wrap to 1.
  const double value = info[0].As<Napi::Number>().DoubleValue();
  if (!(value == 0 || value == 1 || value == 2)) {
    Napi::RangeError e = Napi::RangeError::New(env, "setConntrackEvents: value must be 0, 1 or 2");
    e.Set("code", Napi::String::New(env, "ERANGE"));
    throw e;
  }
  const char data[2] = {static_cast<char>('0' + static_cast<int>(value)), '\n'};
  const char* where = "open";
  int err = RunPrivileged([&] {
    int fd = open(kConntrackEvents, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno;
    where = "write";
    ssize_t n;
    do {
      n = write(fd, data, sizeof data);
    } while (n < 0 && errno == EINTR);
    // A sysctl takes the whole value in one write; a short one did not set it.
    int result = n < 0 ? errno : size_t(n) == sizeof data ? 0 : EIO;
    if (close(fd) < 0 && result == 0) {
      where = "close";
      result = errno;
    }
    return result;
  });
  if (err != 0) throw ErrnoError(env, err, where);
  return env.Undefined();
}

// joinNetns(path): the calling thread joins the network namespace that `path` (an nsfs file:
// /run/netns/NAME, /proc/PID/ns/net) refers to. setns(CLONE_NEWNET) changes the calling thread
// only; threads it creates afterwards inherit the namespace. Needs CAP_SYS_ADMIN (EPERM);
// EINVAL when `path` is not a network namespace. O_NONBLOCK: a FIFO given by mistake must not
// block the open.
Napi::Value JoinNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "joinNetns(path)");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw ErrnoError(env, errno, "open");
  const int err = setns(fd, CLONE_NEWNET) < 0 ? errno : 0;
  close(fd);
  if (err != 0) throw ErrnoError(env, err, "setns");
  return env.Undefined();
}

// sendDatagram(socketPath, message): one datagram to the AF_UNIX SOCK_DGRAM socket at
// `socketPath` (syslog's /dev/log; the RFC 3164 line is made in recorder/log.ts). A fresh socket
// per call, so a restarted syslog daemon needs no reconnect; MSG_DONTWAIT: a stalled daemon
// costs a lost message (EAGAIN), never a stalled recorder.
Napi::Value SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(env, "sendDatagram(socketPath, message)");
  }
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string message = info[1].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    throw ErrnoError(env, ENAMETOOLONG, "sendto");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw ErrnoError(env, errno, "socket");
  ssize_t n = sendto(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = n < 0 ? errno : 0;
  close(fd);
  if (err != 0) throw ErrnoError(env, err, "sendto");
  return env.Undefined();
}

// interfaceAddresses() → [{ name, family, flags, address, netmask }]: every address of every
// interface of the calling thread's namespace, up or not (native/interfaces.cc); netmask null
// when getifaddrs gave none. Which of them are the host's is recorder/host.ts's decision.
Napi::Value InterfaceAddressesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<InterfaceAddress> list;
  if (int err = ListInterfaceAddresses(&list)) throw ErrnoError(env, err, "getifaddrs");
  Napi::Array out = Napi::Array::New(env, list.size());
  uint32_t i = 0;
  for (const InterfaceAddress& a : list) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", Napi::String::New(env, a.name));
    o.Set("family", Napi::Number::New(env, a.family));
    o.Set("flags", Napi::Number::New(env, double(a.flags)));
    Napi::Uint8Array address = Napi::Uint8Array::New(env, a.length);
    std::memcpy(address.Data(), a.address, a.length);
    o.Set("address", address);
    if (a.mask_length == 0) {
      o.Set("netmask", env.Null());
    } else {
      Napi::Uint8Array netmask = Napi::Uint8Array::New(env, a.mask_length);
      std::memcpy(netmask.Data(), a.netmask, a.mask_length);
      o.Set("netmask", netmask);
    }
    out.Set(i++, o);
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("layout", Napi::Function::New(env, Layout, "layout"));
  exports.Set("start", Napi::Function::New(env, Start, "start"));
  exports.Set("getpwnam", Napi::Function::New(env, Getpwnam, "getpwnam"));
  exports.Set("getpwuid", Napi::Function::New(env, Getpwuid, "getpwuid"));
  exports.Set("dropPrivileges", Napi::Function::New(env, DropPrivilegesJs, "dropPrivileges"));
  exports.Set("setConntrackEvents",
              Napi::Function::New(env, SetConntrackEvents, "setConntrackEvents"));
  exports.Set("joinNetns", Napi::Function::New(env, JoinNetns, "joinNetns"));
  exports.Set("sendDatagram", Napi::Function::New(env, SendDatagram, "sendDatagram"));
  exports.Set("interfaceAddresses",
              Napi::Function::New(env, InterfaceAddressesJs, "interfaceAddresses"));
  return exports;
}

}  // namespace
}  // namespace ct

static Napi::Object InitCtNative(Napi::Env env, Napi::Object exports) {
  return ct::Init(env, exports);
}

NODE_API_MODULE(ct_native, InitCtNative)
