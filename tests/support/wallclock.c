/* An LD_PRELOAD shim that shifts one process's wall clock, and only that.
 *
 * clock_gettime(CLOCK_REALTIME[_COARSE]), gettimeofday and time return the real
 * time plus an offset; every other clock (CLOCK_MONOTONIC, CLOCK_BOOTTIME, ...)
 * and every sleep and timed wait pass through untouched, so a test can move a
 * node's wall clock forward and back while its monotonic clock runs on.
 *
 * The offset is a native-endian int64 of nanoseconds at the start of the file
 * named by $BAZAR_WALL_OFFSET_FILE, mapped shared once: whoever rewrites those 8
 * bytes (an aligned 8-byte store) moves the clock of every process and thread
 * that maps the file at once. No variable, no file or a short file: offset 0.
 *
 * Built at test time by tests/support/timefaults.py (gcc -shared -fPIC).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static const int64_t *offset_ns; /* NULL: no offset file */

static void setup(void) {
    clock_gettime_fn real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("BAZAR_WALL_OFFSET_FILE");
    if (path != NULL && offset_ns == NULL) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 8) {
            void *mapped = mmap(NULL, 8, PROT_READ, MAP_SHARED, fd, 0);
            if (mapped != MAP_FAILED)
                offset_ns = (const int64_t *)mapped;
        }
        if (fd >= 0)
            close(fd);
    }
    __atomic_store_n(&real_clock_gettime, real, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void load(void) { setup(); }

/* The real clock; set up on first use too, in case another library's constructor
 * asks for the time before ours ran (setting up twice is harmless). */
static int real_time(clockid_t clock, struct timespec *ts) {
    clock_gettime_fn real = __atomic_load_n(&real_clock_gettime, __ATOMIC_ACQUIRE);
    if (real == NULL) {
        setup();
        real = __atomic_load_n(&real_clock_gettime, __ATOMIC_ACQUIRE);
    }
    return real(clock, ts);
}

static void shift(struct timespec *ts) {
    if (offset_ns == NULL)
        return;
    int64_t offset = __atomic_load_n(offset_ns, __ATOMIC_RELAXED);
    int64_t ns = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec + offset;
    int64_t sec = ns / 1000000000, rest = ns % 1000000000;
    if (rest < 0) { /* floor, so tv_nsec stays in [0, 1e9) before 1970 too */
        rest += 1000000000;
        sec -= 1;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)rest;
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    int rc = real_time(clock, ts);
    if (rc == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        shift(ts);
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    if (tz != NULL) { /* obsolete; glibc only zeroes it */
        ((struct timezone *)tz)->tz_minuteswest = 0;
        ((struct timezone *)tz)->tz_dsttime = 0;
    }
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return rc;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
