/* tcpflood: makes N real TCP connections (full three-way handshakes), each a new conntrack entry.
 *
 * Usage: tcpflood serve [PORTS]
 *          the server: listens on ports 7000..7000+PORTS-1 (default 4) of every address, accepts
 *          and closes each connection; stops on SIGTERM or SIGINT and prints "accepted=<n>".
 *        tcpflood FIRST_ADDR N [MAX_SECONDS] [PORTS] [CONCURRENCY]
 *          the client: N connections to the server's ports 7000..7000+PORTS-1 (default 4) of
 *          FIRST_ADDR, FIRST_ADDR+1, …; CONCURRENCY (default 128) handshakes in flight at once,
 *          non-blocking connects on one epoll. Stops after N attempts or MAX_SECONDS (default 60).
 *   Each connection binds its own source port, 1024..65023 in turn (64,000 per destination
 *   (address, port)), and destination k / 64000 is the next (port, address): the 4-tuples stay
 *   distinct for 64,000 x PORTS connections per address, so the kernel creates one entry each.
 *   The client closes with SO_LINGER {1, 0}, an RST right after the handshake: no TIME_WAIT
 *   socket holds the source port, so the port can be bound again 64,000 connections later,
 *   and the client does no FIN exchange, which would halve the rate on a shared 2-core machine.
 *   The conntrack entry still sees SYN, SYN-ACK, ACK and the RST (and the server's FIN when it
 *   closes first), so its events are those of a short real connection.
 * Prints one line on stdout: "sent=<attempts> connected=<n> failed=<n> seconds=<s> rate=<connected/s>".
 * Build: gcc -O2 -Wall -Wextra -o tcpflood tcpflood.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flood-util.h"

enum { PORT0 = 7000, PORT_LO = 1024, PORTS_PER_DST = 64000, MAX_PORTS = 1000, MAX_EVENTS = 256 };

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
  (void)sig;
  stop = 1;
}

static int serve(int ports) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int ep = epoll_create1(0);
  if (ep < 0) {
    perror("tcpflood: epoll_create1");
    return 1;
  }
  for (int p = 0; p < ports; p++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(PORT0 + p))};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
      perror("tcpflood: listen");
      return 1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
      perror("tcpflood: epoll_ctl");
      return 1;
    }
  }
  /* The caller waits for this line before it starts the client. */
  printf("listening ports=%d..%d\n", PORT0, PORT0 + ports - 1);
  fflush(stdout);
  long accepted = 0;
  struct epoll_event evs[MAX_EVENTS];
  while (!stop) {
    int n = epoll_wait(ep, evs, MAX_EVENTS, 1000);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("tcpflood: epoll_wait");
      return 1;
    }
    for (int i = 0; i < n; i++) {
      int c;
      while ((c = accept4(evs[i].data.fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
        accepted++;
        close(c);
      }
      /* EAGAIN: the queue is empty; ECONNABORTED and the like: that one connection is gone. */
    }
  }
  printf("accepted=%ld\n", accepted);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
    if (argc > 3) {
      fprintf(stderr, "usage: tcpflood serve [PORTS]\n");
      return 2;
    }
    long ports = argc == 3 ? parse_count("tcpflood", argv[2], "PORTS") : 4;
    if (ports > MAX_PORTS) {
      fprintf(stderr, "tcpflood: PORTS must be at most %d\n", MAX_PORTS);
      return 2;
    }
    return serve((int)ports);
  }
  if (argc < 3 || argc > 6) {
    fprintf(stderr, "usage: tcpflood serve [PORTS]\n"
                    "       tcpflood FIRST_ADDR N [MAX_SECONDS] [PORTS] [CONCURRENCY]\n");
    return 2;
  }
  struct in_addr first;
  if (inet_pton(AF_INET, argv[1], &first) != 1) {
    fprintf(stderr, "tcpflood: '%s' is not an IPv4 address\n", argv[1]);
    return 2;
  }
  long total = parse_count("tcpflood", argv[2], "N");
  double max_seconds = argc >= 4 ? (double)parse_count("tcpflood", argv[3], "MAX_SECONDS") : 60.0;
  long ports = argc >= 5 ? parse_count("tcpflood", argv[4], "PORTS") : 4;
  long conc = argc >= 6 ? parse_count("tcpflood", argv[5], "CONCURRENCY") : 128;
  if (ports > MAX_PORTS || conc > 60000) {
    fprintf(stderr, "tcpflood: PORTS must be at most %d, CONCURRENCY at most 60000\n", MAX_PORTS);
    return 2;
  }

  int ep = epoll_create1(0);
  if (ep < 0) {
    perror("tcpflood: epoll_create1");
    return 1;
  }
  uint32_t base = ntohl(first.s_addr);
  long sent = 0, connected = 0, failed = 0, inflight = 0;
  struct linger rst = {.l_onoff = 1, .l_linger = 0};
  int one = 1;
  double start = now(), deadline = start + max_seconds;
  struct epoll_event evs[MAX_EVENTS];

  for (;;) {
    int timed_out = now() >= deadline;
    /* Start attempts until CONCURRENCY are in flight. */
    while (!timed_out && inflight < conc && sent < total) {
      long k = sent++;
      long d = k / PORTS_PER_DST;
      struct sockaddr_in src = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(PORT_LO + k % PORTS_PER_DST))};
      struct sockaddr_in dst = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)(PORT0 + d % ports)),
                                .sin_addr.s_addr = htonl(base + (uint32_t)(d / ports))};
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (fd < 0) {
        perror("tcpflood: socket");
        return 1;
      }
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        /* The source port is still held (it should not be: RST closes leave no TIME_WAIT). */
        failed++;
        close(fd);
        continue;
      }
      int rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
      if (rc < 0 && errno != EINPROGRESS) {
        failed++;
        close(fd);
        continue;
      }
      /* rc == 0 (connected at once) is reported by EPOLLOUT just the same. */
      struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
      if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        perror("tcpflood: epoll_ctl");
        return 1;
      }
      inflight++;
    }
    if (inflight == 0 && (sent >= total || timed_out)) break;
    int n = epoll_wait(ep, evs, MAX_EVENTS, 100);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("tcpflood: epoll_wait");
      return 1;
    }
    if (n == 0 && timed_out) {
      /* Past MAX_SECONDS and nothing more completes: the attempts still in flight failed. */
      break;
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd, err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
      if (err == 0) {
        connected++;
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
      } else {
        failed++;
      }
      close(fd); /* also removes it from the epoll set */
      inflight--;
    }
  }
  failed += inflight;
  double secs = now() - start;
  printf("sent=%ld connected=%ld failed=%ld seconds=%.3f rate=%.0f\n", sent, connected, failed, secs,
         connected / secs);
  return 0;
}
