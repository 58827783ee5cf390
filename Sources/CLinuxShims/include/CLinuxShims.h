#ifndef POOLER_CLINUXSHIMS_H
#define POOLER_CLINUXSHIMS_H
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <time.h>
#include <stdint.h>
#include <sys/syscall.h>

/* The hot syscalls, issued with syscall(2): glibc's own wrappers are cancellation
 * points, which in a multi-threaded process (workers > 1) enable and disable
 * asynchronous cancellation around every call (~140 instructions per transaction
 * measured with cost.sh). The pooler never cancels threads. */
static inline ssize_t pooler_read(int fd, void *buffer, size_t count) {
    return syscall(SYS_read, fd, buffer, count);
}
static inline ssize_t pooler_send(int fd, const void *buffer, size_t count, int flags) {
    return syscall(SYS_sendto, fd, buffer, count, flags, (void *)0, 0);
}
static inline ssize_t pooler_sendmsg(int fd, const struct msghdr *message, int flags) {
    return syscall(SYS_sendmsg, fd, message, flags);
}

/* epoll_event is packed on x86_64; Swift cannot build it field by field reliably. */
static inline int pooler_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

/* Waits and copies events into two flat arrays so Swift never touches the packed struct. */
int pooler_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int maxevents, int timeout_ms);

static inline int pooler_errno(void) { return errno; }

int pooler_accept4(int fd, struct sockaddr *addr, socklen_t *len);

static inline int pooler_socket(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static inline int pooler_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

static inline uint64_t pooler_monotonic_usec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int pooler_peer_uid(int fd, uint32_t *uid);

/* Signals are delivered through a self-pipe-like counter array read by the loop. */
void pooler_install_signal_handlers(int wake_fd);
/* Returns and clears the pending count for a signal number (SIGHUP, SIGINT, ...). */
int pooler_take_signal(int signo);

/* syslog(3) is variadic; these take a finished message. */
void pooler_openlog(const char *ident, const char *facility);
void pooler_syslog(int level, const char *message);
void pooler_closelog(void);

/* sd_notify(3) without libsystemd: sends `state` to $NOTIFY_SOCKET when set.
   Returns 1 when sent, 0 when not under systemd, -1 on error. */
int pooler_sd_notify(const char *state);

#endif

/* Recycled I/O buffer storage, per thread (each event loop runs on its own thread):
 * power-of-two size classes from 1 KiB to 64 KiB, at most 512 blocks each. A block
 * may be given back on another thread than the one that took it. */
void *pooler_buffer_take(size_t capacity);
void pooler_buffer_give(void *storage, size_t capacity);
/* Frees the calling thread's cached blocks (a loop thread that ends). */
void pooler_buffer_drain(void);

/* The thread a loop runs on (workers > 1): runs body(context) on a new detached-less
 * thread; returns 0 or an errno. */
int pooler_thread_start(void *(*body)(void *), void *context, unsigned long *thread);
int pooler_thread_join(unsigned long thread);

/* The CPUs the calling thread may run on (its affinity mask), in ascending order, into
 * cpus (at most max); returns how many, or -1 with errno set. */
int pooler_allowed_cpus(int *cpus, int max);
/* Restricts the calling thread to one CPU; returns 0 or an errno. */
int pooler_pin_thread(int cpu);

/* Counters one event loop writes and the others read (workers > 1). */
static inline void pooler_atomic_store(uint64_t *target, uint64_t value) {
    __atomic_store_n(target, value, __ATOMIC_SEQ_CST);
}
static inline uint64_t pooler_atomic_load(const uint64_t *source) {
    return __atomic_load_n(source, __ATOMIC_SEQ_CST);
}
static inline void pooler_atomic_add(uint64_t *target, uint64_t delta) {
    __atomic_fetch_add(target, delta, __ATOMIC_SEQ_CST);
}
