/* flood-util.h: what bench/flood.c and bench/tcpflood.c share: a monotonic clock in seconds and
 * the parsing of their positive integer arguments (a bad one prints why and exits 2). */
#ifndef CT_FLOOD_UTIL_H
#define CT_FLOOD_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* PROG: the program's name in the message; WHAT: the argument's. */
static inline long parse_count(const char *prog, const char *s, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v <= 0) {
    fprintf(stderr, "%s: %s must be a positive integer, got '%s'\n", prog, what, s);
    exit(2);
  }
  return v;
}

#endif
