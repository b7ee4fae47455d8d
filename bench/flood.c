/* flood: sends N UDP datagrams, each to a distinct (address, port), so each is a new conntrack entry.
 *
 * Usage: flood FIRST_ADDR N [MAX_SECONDS]
 *   Destinations: ports 1024..65023 of FIRST_ADDR, then of FIRST_ADDR+1, and so on
 *   (64,000 flows per address). One unconnected socket, one source port, sendmmsg in batches:
 *   the generator costs as little as possible so the kernel's conntrack is what is loaded.
 *   Stops after N datagrams or MAX_SECONDS (default 60), whichever comes first.
 * Prints one line on stdout: "sent=<n> seconds=<s> rate=<n/s> enobufs=<n>".
 * Build: gcc -O2 -Wall -Wextra -o flood flood.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flood-util.h"

enum { BATCH = 256, PORT_LO = 1024, PORTS_PER_ADDR = 64000 };

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: flood FIRST_ADDR N [MAX_SECONDS]\n");
    return 2;
  }
  struct in_addr first;
  if (inet_pton(AF_INET, argv[1], &first) != 1) {
    fprintf(stderr, "flood: '%s' is not an IPv4 address\n", argv[1]);
    return 2;
  }
  long total = parse_count("flood", argv[2], "N");
  double max_seconds = argc == 4 ? (double)parse_count("flood", argv[3], "MAX_SECONDS") : 60.0;

  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    perror("flood: socket");
    return 1;
  }
  static struct sockaddr_in dst[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  static char payload[16] = "conntracker";
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = payload;
    iov[i].iov_len = sizeof payload;
    msgs[i].msg_hdr.msg_name = &dst[i];
    msgs[i].msg_hdr.msg_namelen = sizeof dst[i];
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

  uint32_t base = ntohl(first.s_addr);
  long sent = 0, enobufs = 0;
  double start = now(), deadline = start + max_seconds;
  while (sent < total && now() < deadline) {
    int n = 0;
    for (; n < BATCH && sent + n < total; n++) {
      long k = sent + n;
      dst[n].sin_family = AF_INET;
      dst[n].sin_addr.s_addr = htonl(base + (uint32_t)(k / PORTS_PER_ADDR));
      dst[n].sin_port = htons((uint16_t)(PORT_LO + k % PORTS_PER_ADDR));
    }
    int done = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (done < 0) {
      /* A full device queue: the datagram was not sent, so it is retried, never counted. */
      if (errno == ENOBUFS || errno == EAGAIN) {
        enobufs++;
        continue;
      }
      /* An ICMP error from an earlier datagram is reported on this socket: not our send. */
      if (errno == ECONNREFUSED) continue;
      perror("flood: sendmmsg");
      return 1;
    }
    sent += done;
  }
  double secs = now() - start;
  printf("sent=%ld seconds=%.3f rate=%.0f enobufs=%ld\n", sent, secs, sent / secs, enobufs);
  close(fd);
  return 0;
}
