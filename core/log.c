#define _POSIX_C_SOURCE 200809L
#include "core/log.h"

#include <errno.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int g_rank = 0;
static ts_log_level g_level = TS_LOG_INFO;
static FILE *g_json = NULL;

/* One JSON line with one write(2) on the O_APPEND descriptor: lines from
 * processes sharing the file (a job array's tasks) never interleave. */
static void json_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void json_line(const char *fmt, ...) {
    char small[1024], *buf = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof small) {
        buf = malloc((size_t)n + 1);
        if (!buf) return;
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = write(fileno(g_json), buf + off, (size_t)n - off);
        if (w <= 0 && errno != EINTR) break;
        if (w > 0) off += (size_t)w;
    }
    if (buf != small) free(buf);
}
static void (*g_exit_hook)(int code) = NULL;

static const char *LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void ts_log_set_rank(int rank) { g_rank = rank; }
int ts_log_rank(void) { return g_rank; }
void ts_log_set_level(ts_log_level level) { g_level = level; }
void ts_set_exit_hook(void (*hook)(int code)) { g_exit_hook = hook; }

double ts_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t ts_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (size_t)ru.ru_maxrss * 1024; /* kilobytes on Linux */
}

static double wall_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ts_log_open_json(const char *path) {
    ts_log_close_json();
    if (path == NULL || g_rank != 0) return 0;
    g_json = fopen(path, "a");
    return g_json ? 0 : -1;
}

void ts_log_close_json(void) {
    if (g_json) fclose(g_json);
    g_json = NULL;
}

void ts_json_escape(char *buf, size_t cap, const char *s) {
    size_t n = 0;
    if (cap == 0) return;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
}

void ts_log_event(const char *event, const char *fields_json) {
    if (g_rank != 0 || g_json == NULL) return;
    json_line("{\"t\":%.3f,\"event\":\"%s\"%s%s}\n", wall_epoch(), event, fields_json && *fields_json ? "," : "",
              fields_json ? fields_json : "");
}

void ts_log(ts_log_level level, const char *fmt, ...) {
    if (g_rank != 0 || level < g_level) return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Progress goes to stdout, problems to stderr, so a failing command's
     * stderr is its one error line. */
    if (level >= TS_LOG_WARN) {
        fflush(stdout);
        fprintf(stderr, "tessera: %s: %s\n", LEVEL_NAMES[level], msg);
    } else {
        fprintf(stdout, "%s\n", msg);
        fflush(stdout);
    }
    if (g_json) {
        char esc[8192];
        ts_json_escape(esc, sizeof esc, msg);
        json_line("{\"t\":%.3f,\"event\":\"log\",\"level\":\"%s\",\"msg\":\"%s\"}\n", wall_epoch(),
                  LEVEL_NAMES[level], esc);
    }
}

TS_NORETURN void ts_fatal_at(const char *file, int line, int code, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Usage errors are the user's to fix: the source location would be noise.
     * They come from the configuration, which every rank checks alike, so
     * rank 0 alone prints them. */
    if (code == TS_EXIT_USAGE) {
        /* Another rank may reach the same check first: it waits, so rank 0
         * prints before the abort takes everyone down, and prints itself
         * only if it is still alive then (an error rank 0 did not see). */
        if (g_rank != 0) {
            sleep(3);
            fprintf(stderr, "tessera: error: %s (rank %d)\n", msg, g_rank);
        } else {
            fprintf(stderr, "tessera: error: %s\n", msg);
        }
    } else {
        fprintf(stderr, "tessera: error: %s (%s:%d)\n", msg, file, line);
    }
    fflush(stderr);
    fflush(stdout);
    if (g_json) {
        char esc[8192];
        ts_json_escape(esc, sizeof esc, msg);
        json_line("{\"t\":%.3f,\"event\":\"error\",\"code\":%d,\"msg\":\"%s\"}\n", wall_epoch(), code, esc);
    }
    if (g_exit_hook) g_exit_hook(code);
    /* _exit, not exit: the libraries' exit handlers must not run on an error
     * path. After a failed write (a full disk) HDF5 keeps the file open with
     * dirty metadata, and its shutdown handler (H5_term_library) flushes it
     * again and crashes (HDF5 1.10; tests/failure/test_enospc.sh). The
     * operating system releases what the process holds; our streams are
     * flushed here. */
    fflush(NULL);
    _exit(code);
}

void *ts_malloc_at(const char *file, int line, size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ts_fatal_at(file, line, TS_EXIT_FAILURE, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *ts_calloc_at(const char *file, int line, size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ts_fatal_at(file, line, TS_EXIT_FAILURE, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

int ts_fail_at(char *err, size_t errcap, const char *src, int line, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++) /* one line, whatever a library's message held */
        if (*c == '\n' || *c == '\r') *c = ' ';
    if (err && errcap) snprintf(err, errcap, "%s (%s:%d)", msg, src, line);
    return -1;
}
