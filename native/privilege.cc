// The privilege drop and the keeper thread: the only thread left with CAP_NET_ADMIN.
#include "privilege.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace ct {
namespace {

// Lives as long as the process once the drop succeeded: never freed, its thread never joined
// (it only waits for work, so process exit may end it at any point).
struct Keeper {
  std::mutex call;  // one caller at a time
  std::mutex mu;
  std::condition_variable cv;
  const std::function<int()>* task = nullptr;
  bool done = false;
  int result = 0;
};

std::atomic<Keeper*> keeper{nullptr};

struct Outcome {
  int err = 0;
  const char* where = nullptr;
  pid_t tid = 0;
  bool all_no_new_privs = false;
};

int Capget(__user_cap_data_struct (&data)[2]) {
  __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
  return static_cast<int>(syscall(SYS_capget, &head, data));
}

// Permitted and effective = {cap}, inheritable empty: for the calling thread only.
int KeepOnly(int cap) {
  __user_cap_header_struct head = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[cap / 32].permitted = data[cap / 32].effective = 1u << (cap % 32);
  return static_cast<int>(syscall(SYS_capset, &head, data));
}

int LastCap() {
  int last = CAP_LAST_CAP;
  std::ifstream f("/proc/sys/kernel/cap_last_cap");
  int n;
  if (f >> n && n > 0) last = n;
  return last;
}

// no_new_privs is per thread. An allow-everything seccomp filter installed with TSYNC copies the
// caller's no_new_privs to every thread of the process (kernel/seccomp.c), which no prctl can do;
// the kernel's action cache makes a constant ALLOW free per syscall. False when it cannot.
bool SpreadNoNewPrivs() {
  sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  sock_fprog prog = {1, &allow};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) == 0;
}

void Serve(Keeper* k) {
  std::unique_lock<std::mutex> lock(k->mu);
  for (;;) {
    k->cv.wait(lock, [k] { return k->task != nullptr; });
    const std::function<int()>* task = k->task;
    lock.unlock();
    const int result = (*task)();
    lock.lock();
    k->task = nullptr;
    k->result = result;
    k->done = true;
    k->cv.notify_all();
  }
}

void KeeperMain(Keeper* k, uid_t uid, gid_t gid, std::promise<Outcome> ready) {
  pthread_setname_np(pthread_self(), "ct-netadmin");
  Outcome o;
  o.tid = static_cast<pid_t>(syscall(SYS_gettid));
  auto fail = [&](const char* call) {
    o.err = errno;
    o.where = call;
    ready.set_value(o);
  };
  // Keep-caps on this thread only: at the uid change every other thread loses everything.
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail("prctl(PR_SET_KEEPCAPS)");
  // glibc runs each of these on every thread of the process (its setxid broadcast).
  if (setgroups(0, nullptr) < 0) return fail("setgroups");
  if (setresgid(gid, gid, gid) < 0) return fail("setresgid");
  if (setresuid(uid, uid, uid) < 0) return fail("setresuid");
  if (KeepOnly(CAP_NET_ADMIN) < 0) return fail("capset(CAP_NET_ADMIN)");
  if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) return fail("prctl(PR_SET_KEEPCAPS)");
  // The uid change already emptied the ambient set; older kernels lack the call (EINVAL).
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
    return fail("prctl(PR_CAP_AMBIENT_CLEAR_ALL)");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail("prctl(PR_SET_NO_NEW_PRIVS)");
  o.all_no_new_privs = SpreadNoNewPrivs();
  ready.set_value(o);
  Serve(k);
}

int Lookup(bool by_name, const std::string& name, uid_t uid, PasswdEntry* out) {
  long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? size_t(hint) : 1024);
  passwd pw;
  passwd* found = nullptr;
  for (;;) {
    int err = by_name ? getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found)
                      : getpwuid_r(uid, &pw, buf.data(), buf.size(), &found);
    if (err == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    // getpw*_r report "no such user" as 0 with a null result; some NSS modules as ENOENT.
    if (err == ENOENT || err == ESRCH) err = 0;
    if (err != 0) return err;
    break;
  }
  out->found = found != nullptr;
  if (found != nullptr) {
    out->name = pw.pw_name;
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
  }
  return 0;
}

}  // namespace

int LookupUserName(const std::string& name, PasswdEntry* out) {
  return Lookup(true, name, 0, out);
}

int LookupUserId(uid_t uid, PasswdEntry* out) { return Lookup(false, "", uid, out); }

int DropPrivileges(uid_t uid, gid_t gid, DropResult* result, const char** where) {
  if (keeper.load() != nullptr) {
    *where = "dropPrivileges (already dropped)";
    return EALREADY;
  }
  // The bounding set is per thread and inherited: emptied here, on the thread that spawns child
  // processes, before the keeper is created from it (the keeper keeps its permitted set anyway).
  for (int cap = 0, last = LastCap(); cap <= last; cap++) {
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
      *where = "prctl(PR_CAPBSET_DROP)";
      return errno;
    }
  }
  auto* k = new Keeper();
  std::promise<Outcome> ready;
  std::future<Outcome> outcome = ready.get_future();
  std::thread thread;
  {
    // Signals belong to Node's main thread (glibc's setxid signal cannot be blocked).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      thread = std::thread(KeeperMain, k, uid, gid, std::move(ready));
    } catch (const std::system_error& e) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      delete k;
      *where = "pthread_create";
      return e.code().value();
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  const Outcome o = outcome.get();
  if (o.err != 0) {
    thread.join();
    delete k;
    *where = o.where;
    return o.err;
  }
  thread.detach();
  keeper.store(k);
  // The caller (main) thread: no capability may be left, whatever glibc or the kernel did.
  __user_cap_data_struct caps[2] = {};
  if (Capget(caps) < 0) {
    *where = "capget";
    return errno;
  }
  for (const auto& c : caps) {
    if (c.effective || c.permitted || c.inheritable) {
      *where = "capget (the main thread kept capabilities)";
      return EPERM;
    }
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    *where = "prctl(PR_SET_NO_NEW_PRIVS)";
    return errno;
  }
  // The uid change already made the process non-dumpable unless fs.suid_dumpable says
  // otherwise; say it ourselves, so the account we run as can never ptrace us or read our
  // memory (where the keeper's capability lives) whatever that sysctl holds.
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    *where = "prctl(PR_SET_DUMPABLE)";
    return errno;
  }
  result->keeper_tid = o.tid;
  result->all_no_new_privs = o.all_no_new_privs;
  return 0;
}

int RunPrivileged(const std::function<int()>& fn) {
  Keeper* k = keeper.load();
  if (k == nullptr) return fn();
  std::lock_guard<std::mutex> one(k->call);
  std::unique_lock<std::mutex> lock(k->mu);
  k->task = &fn;
  k->done = false;
  k->cv.notify_all();
  k->cv.wait(lock, [k] { return k->done; });
  return k->result;
}

}  // namespace ct
