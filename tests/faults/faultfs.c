/* faultfs: an LD_PRELOAD shim that fails or delays fsync, fdatasync and pwrite on the files
 * a test names, as a control file says. Built by `make` (tests/faults/faultfs.so).
 *
 *   FAULTFS_CONTROL=/path/to/control   the control file, read at every intercepted call
 *   FAULTFS_MATCH=tapgate.db           only files whose path contains this are affected
 *
 * The control file holds one line: empty (no faults), or any of
 *   fsync=fail  fsync=delay:<ms>  fsync=hold  pwrite=fail  pwrite=delay:<ms>
 * separated by spaces. "fail" returns -1 with EIO (fsync, fdatasync) or ENOSPC (pwrite);
 * "hold" blocks the call until the control file no longer says so (the test decides when
 * the stall ends, not a clock).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static char control[256];

static void read_control(void) {
    const char *path = getenv("FAULTFS_CONTROL");
    control[0] = '\0';
    if (path == NULL) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, control, sizeof(control) - 1);
    close(fd);
    control[n > 0 ? n : 0] = '\0';
}

static int matches(int fd) {
    const char *match = getenv("FAULTFS_MATCH");
    char link[64], target[4096];
    if (match == NULL || match[0] == '\0') return 1;
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) return 0;
    target[n] = '\0';
    return strstr(target, match) != NULL;
}

/* 1 = fail, 0 = go on (after any delay) */
static int fault(const char *op, int fd) {
    char key[32];
    if (!matches(fd)) return 0;
    read_control();
    snprintf(key, sizeof(key), "%s=fail", op);
    if (strstr(control, key) != NULL) return 1;
    snprintf(key, sizeof(key), "%s=delay:", op);
    const char *delay = strstr(control, key);
    if (delay != NULL) {
        long ms = strtol(delay + strlen(key), NULL, 10);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(key, sizeof(key), "%s=hold", op);
    while (strstr(control, key) != NULL) {
        struct timespec poll = {0, 10 * 1000000L};
        nanosleep(&poll, NULL);
        read_control();
    }
    return 0;
}

typedef int (*sync_fn)(int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwrite64_fn)(int, const void *, size_t, off64_t);
#define REAL(name, type) \
    static type real_##name; \
    if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

int fsync(int fd) {
    REAL(fsync, sync_fn);
    if (fault("fsync", fd)) { errno = EIO; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync, sync_fn);
    if (fault("fsync", fd)) { errno = EIO; return -1; }
    return real_fdatasync(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite, pwrite_fn);
    if (fault("pwrite", fd)) { errno = ENOSPC; return -1; }
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    REAL(pwrite64, pwrite64_fn);
    if (fault("pwrite", fd)) { errno = ENOSPC; return -1; }
    return real_pwrite64(fd, buf, count, offset);
}
