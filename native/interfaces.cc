// getifaddrs(3) without libuv's filter: uv_interface_addresses (os.networkInterfaces) leaves out
// every interface that is not IFF_UP and IFF_RUNNING, so an address on a link without carrier,
// still local to the kernel, went missing from the journal (docs/native.md, "Host addresses").
#include "interfaces.h"

#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

namespace ct {
namespace {

// The bytes of an AF_INET or AF_INET6 sockaddr; 0 for any other family (AF_PACKET) or none.
uint8_t AddressBytes(const sockaddr* sa, uint8_t* out) {
  if (sa == nullptr) return 0;
  if (sa->sa_family == AF_INET) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return 4;
  }
  if (sa->sa_family == AF_INET6) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return 16;
  }
  return 0;
}

}  // namespace

int ListInterfaceAddresses(std::vector<InterfaceAddress>* out) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return errno;
  for (const ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    InterfaceAddress a;
    a.length = AddressBytes(ifa->ifa_addr, a.address);
    if (a.length == 0 || ifa->ifa_name == nullptr) continue;
    // glibc builds the netmask from the prefix length; a missing or foreign one is reported as
    // none, and TypeScript decides what that means.
    if (AddressBytes(ifa->ifa_netmask, a.netmask) == a.length) a.mask_length = a.length;
    a.name = ifa->ifa_name;
    a.family = a.length == 4 ? 4 : 6;
    a.flags = ifa->ifa_flags;
    out->push_back(std::move(a));
  }
  freeifaddrs(list);
  return 0;
}

}  // namespace ct
