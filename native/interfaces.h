// The namespace's interface addresses as getifaddrs(3) lists them: mechanism only, the choice of
// which ones are the host's is recorder/host.ts's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ct {

struct InterfaceAddress {
  std::string name;       // ifa_name: the interface, or its IPv4 label (eth0:1)
  int family = 0;         // 4 or 6
  unsigned flags = 0;     // the interface's IFF_* flags (linux/if.h)
  uint8_t length = 0;       // 4 or 16: bytes used in address
  uint8_t mask_length = 0;  // length, or 0 when getifaddrs gave no netmask of the family
  uint8_t address[16]{};    // network byte order
  uint8_t netmask[16]{};
};

// Every IPv4 and IPv6 address of every interface of the calling thread's network namespace,
// whatever the interface's state (up or not, carrier or not), in getifaddrs' order. 0, or an
// errno value.
int ListInterfaceAddresses(std::vector<InterfaceAddress>* out);

}  // namespace ct
