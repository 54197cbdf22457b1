/*
 * A disk that syncs slowly, for the benchmarks' --slow-sync-us (slow-sync.ts):
 * loaded with LD_PRELOAD, it makes every fdatasync and fsync of a process wait
 * CDSGATE_SLOW_SYNC_US microseconds before the real call, one call at a
 * time (a device flushes one request at a time, so concurrent syncs queue
 * as they would behind a slow disk). Only the gateways sync; the node,
 * HAProxy and the load generator never call either, so only the audit
 * log's syncs slow down. What it models: audit logs on network storage, or
 * a busy or failing device.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

static pthread_mutex_t device = PTHREAD_MUTEX_INITIALIZER;

static long delay_ns(void) {
  static long ns = -1;
  if (ns < 0) {
    const char *us = getenv("CDSGATE_SLOW_SYNC_US");
    ns = us ? atol(us) * 1000L : 0;
  }
  return ns;
}

static int slow(int (*real)(int), int fd) {
  pthread_mutex_lock(&device);
  long ns = delay_ns();
  struct timespec t = { ns / 1000000000L, ns % 1000000000L };
  while (ns > 0 && nanosleep(&t, &t) != 0) {}
  int result = real(fd);
  pthread_mutex_unlock(&device);
  return result;
}

int fdatasync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return slow(real, fd);
}

int fsync(int fd) {
  static int (*real)(int);
  if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return slow(real, fd);
}
