/* A full disk without privileges: an LD_PRELOAD interposer that fails
 * writes to files whose path contains TESSERA_ENOSPC_MATCH with ENOSPC,
 * once TESSERA_ENOSPC_AFTER bytes (default 0) have gone to such files. The
 * failure tests (tests/failure/test_enospc.sh) run tessera under it.
 *
 *   LD_PRELOAD=libtessera_enospc.so TESSERA_ENOSPC_MATCH=checkpoint.h5.part tessera train ...
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long long g_written; /* bytes that reached matching files */

/* Whether fd is a matching file that has had its allowance; counts n
 * bytes against the allowance when it has not. */
static int full(int fd, size_t n) {
    const char *match = getenv("TESSERA_ENOSPC_MATCH");
    if (!match || !*match) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    if (len < 0) return 0;
    path[len] = '\0';
    if (!strstr(path, match)) return 0;
    const char *after = getenv("TESSERA_ENOSPC_AFTER");
    long long allow = after ? atoll(after) : 0;
    if (g_written + (long long)n > allow) return 1;
    g_written += (long long)n;
    return 0;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);

ssize_t write(int fd, const void *buf, size_t n) {
    static write_fn real;
    if (!real) real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (full(fd, n)) return errno = ENOSPC, -1;
    return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    if (full(fd, n)) return errno = ENOSPC, -1;
    return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    if (full(fd, n)) return errno = ENOSPC, -1;
    return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    static writev_fn real;
    if (!real) real = (writev_fn)dlsym(RTLD_NEXT, "writev");
    size_t n = 0;
    for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
    if (full(fd, n)) return errno = ENOSPC, -1;
    return real(fd, iov, cnt);
}
