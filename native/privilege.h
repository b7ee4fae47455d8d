// Least privilege: drop every thread to a user with no capability, except one that keeps
// CAP_NET_ADMIN and performs the few calls that still need it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

namespace ct {

struct PasswdEntry {
  bool found = false;
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// getpwnam_r / getpwuid_r (NSS included). 0 with `found` false when there is no such user, or
// an errno value.
int LookupUserName(const std::string& name, PasswdEntry* out);
int LookupUserId(uid_t uid, PasswdEntry* out);

struct DropResult {
  pid_t keeper_tid = 0;            // the thread that kept CAP_NET_ADMIN
  bool all_no_new_privs = false;   // no_new_privs reached every thread, not only main + keeper
};

// Call on the main thread, once, as root. Empties the calling thread's bounding set, then
// starts the keeper thread ("ct-netadmin"), which sets PR_SET_KEEPCAPS on itself only and calls
// setgroups({}), setresgid, setresuid: glibc applies those to every thread, and every thread but
// the keeper loses all its capabilities. The keeper then capsets itself to CAP_NET_ADMIN
// (permitted + effective), sets no_new_privs and spreads it to every thread. Returns 0 or an errno
// value with `*where` naming the failed call.
int DropPrivileges(uid_t uid, gid_t gid, DropResult* result, const char** where);

// Runs `fn` on the keeper thread and waits for it when privileges were dropped, else on the
// calling thread. Returns what `fn` returns (an errno value by convention). Any thread.
// Only fixed operations may come here (the dump request, the nf_conntrack_events write): never
// a path, a sysctl name or bytes taken from JavaScript, or the keeper is a CAP_NET_ADMIN oracle.
int RunPrivileged(const std::function<int()>& fn);

}  // namespace ct
