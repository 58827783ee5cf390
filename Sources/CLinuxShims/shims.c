#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <string.h>
#include <stdatomic.h>
#include <syslog.h>
#include <strings.h>
#include <stdlib.h>
#include <stddef.h>
#include <pthread.h>
#include <sched.h>

int pooler_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int maxevents, int timeout_ms) {
    struct epoll_event evs[256];
    if (maxevents > 256) maxevents = 256;
    /* epoll_pwait through syscall(2): not a cancellation point (see pooler_read). */
    int n = (int)syscall(SYS_epoll_pwait, epfd, evs, maxevents, timeout_ms, (void *)0, 8);
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        data[i] = evs[i].data.u64;
    }
    return n;
}

static int signal_wake_fd = -1;
static atomic_int pending[65];

static void on_signal(int signo) {
    int saved = errno;
    if (signo > 0 && signo < 65) atomic_fetch_add(&pending[signo], 1);
    if (signal_wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(signal_wake_fd, &one, sizeof(one));
        (void)r;
    }
    errno = saved;
}

void pooler_install_signal_handlers(int wake_fd) {
    signal_wake_fd = wake_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    int sigs[] = { SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2 };
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int pooler_take_signal(int signo) {
    if (signo <= 0 || signo >= 65) return 0;
    return atomic_exchange(&pending[signo], 0);
}

int pooler_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int pooler_peer_uid(int fd, uint32_t *uid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    return 0;
}

static char syslog_ident[64];

void pooler_openlog(const char *ident, const char *facility) {
    static const struct { const char *name; int value; } facilities[] = {
        {"auth", LOG_AUTH}, {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    int value = LOG_DAEMON;
    for (unsigned i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (strcasecmp(facility, facilities[i].name) == 0) value = facilities[i].value;
    /* openlog keeps the pointer: keep our own copy alive. */
    strncpy(syslog_ident, ident, sizeof(syslog_ident) - 1);
    openlog(syslog_ident, LOG_PID, value);
}

void pooler_syslog(int level, const char *message) {
    static const int levels[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
    syslog(levels[level < 0 || level > 3 ? 2 : level], "%s", message);
}

void pooler_closelog(void) { closelog(); }

int pooler_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == 0) return 0;
    struct sockaddr_un address;
    memset(&address, 0, sizeof(address));
    address.sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length >= sizeof(address.sun_path)) return -1;
    memcpy(address.sun_path, path, length);
    if (path[0] == '@') address.sun_path[0] = 0; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    ssize_t sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&address,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + length));
    close(fd);
    return sent < 0 ? -1 : 1;
}

#define POOLER_BUFFER_CLASSES 7
#define POOLER_BUFFER_SMALLEST_SHIFT 10
#define POOLER_BUFFER_PER_CLASS 512

static _Thread_local void *buffer_lists[POOLER_BUFFER_CLASSES][POOLER_BUFFER_PER_CLASS];
static _Thread_local int buffer_counts[POOLER_BUFFER_CLASSES];

static int buffer_class(size_t capacity) {
    if (capacity == 0 || (capacity & (capacity - 1)) != 0) return -1;
    int shift = __builtin_ctzl(capacity) - POOLER_BUFFER_SMALLEST_SHIFT;
    return shift >= 0 && shift < POOLER_BUFFER_CLASSES ? shift : -1;
}

void *pooler_buffer_take(size_t capacity) {
    int index = buffer_class(capacity);
    if (index >= 0 && buffer_counts[index] > 0) return buffer_lists[index][--buffer_counts[index]];
    void *storage = NULL;
    if (posix_memalign(&storage, 16, capacity) != 0) abort();
    return storage;
}

void pooler_buffer_give(void *storage, size_t capacity) {
    int index = buffer_class(capacity);
    if (index >= 0 && buffer_counts[index] < POOLER_BUFFER_PER_CLASS) {
        buffer_lists[index][buffer_counts[index]++] = storage;
    } else {
        free(storage);
    }
}

void pooler_buffer_drain(void) {
    for (int index = 0; index < POOLER_BUFFER_CLASSES; index++) {
        while (buffer_counts[index] > 0) free(buffer_lists[index][--buffer_counts[index]]);
    }
}

int pooler_thread_start(void *(*body)(void *), void *context, unsigned long *thread) {
    pthread_t handle;
    int result = pthread_create(&handle, NULL, body, context);
    if (result == 0) *thread = (unsigned long)handle;
    return result;
}

int pooler_thread_join(unsigned long thread) {
    return pthread_join((pthread_t)thread, NULL);
}

int pooler_allowed_cpus(int *cpus, int max) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && count < max; cpu++) {
        if (CPU_ISSET(cpu, &set)) cpus[count++] = cpu;
    }
    return count;
}

int pooler_pin_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}
