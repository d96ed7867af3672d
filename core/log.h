/* Errors, logging and timers.
 *
 * Errors: one line naming our file:line and the library's own message, then
 * exit. Logging: human lines on rank 0 (debug/info on stdout, warn/error on
 * stderr), and the same events as JSON
 * lines in a file (normally OUT/tessera.jsonl) on rank 0.
 */
#ifndef TESSERA_CORE_LOG_H
#define TESSERA_CORE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* C11 spells "does not return" _Noreturn; the CUDA sources (C++) include
 * this header too. */
#ifdef __cplusplus
#define TS_NORETURN [[noreturn]]
extern "C" {
#else
#define TS_NORETURN _Noreturn
#endif

typedef enum { TS_LOG_DEBUG = 0, TS_LOG_INFO, TS_LOG_WARN, TS_LOG_ERROR } ts_log_level;

/* Exit codes: 1 runtime failure (I/O, library, numerics), 2 bad usage or
 * configuration. */
enum { TS_EXIT_FAILURE = 1, TS_EXIT_USAGE = 2 };

void ts_log_set_rank(int rank);           /* only rank 0 prints */
int ts_log_rank(void);
void ts_log_set_level(ts_log_level level);
/* Open (append) the JSON-lines log; NULL closes it. Returns 0 or -1. */
int ts_log_open_json(const char *path);
void ts_log_close_json(void);

/* A human line on rank 0 and {"t":..,"level":..,"msg":..} in the JSON log. */
void ts_log(ts_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define ts_info(...) ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_warn(...) ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_debug(...) ts_log(TS_LOG_DEBUG, __VA_ARGS__)

/* A structured event: `fields_json` is the inside of a JSON object without
 * braces (e.g. "\"what\":\"sgemm\",\"gflops\":12.5"); it goes to the JSON
 * log with the time and `event` added. Nothing is printed to the terminal. */
void ts_log_event(const char *event, const char *fields_json);

/* Fatal errors: print "tessera: error: <msg> (file:line)" on every rank that
 * hits it and exit with `code`. A hook set by the MPI layer may abort the job
 * instead of exiting one rank. */
/* The error family. A library error is one line, "<message> (<file>:<line>)",
 * written into the caller's buffer err (errcap bytes) for the caller to
 * report; every check macro ends in ts_fail_at, which returns -1:
 *   return TS_FAIL(err, errcap, fmt, ...);
 *   TS_CHECK(cond, err, errcap, fmt, ...);    returns -1 unless cond
 * The NetCDF and HDF5 variants are in io/io_error.h, the MPI one
 * (TS_MPI_CHECK, fatal) in parallel/mpi_env.h. */
int ts_fail_at(char *err, size_t errcap, const char *src, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define TS_FAIL(err, errcap, ...) ts_fail_at((err), (errcap), __FILE__, __LINE__, __VA_ARGS__)
#define TS_CHECK(cond, err, errcap, ...)                             \
    do {                                                            \
        if (!(cond)) return TS_FAIL((err), (errcap), __VA_ARGS__);  \
    } while (0)

TS_NORETURN void ts_fatal_at(const char *file, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define ts_fatal(...) ts_fatal_at(__FILE__, __LINE__, TS_EXIT_FAILURE, __VA_ARGS__)
#define ts_usage_error(...) ts_fatal_at(__FILE__, __LINE__, TS_EXIT_USAGE, __VA_ARGS__)
void ts_set_exit_hook(void (*hook)(int code));

/* Checked allocation: aborts with a clear line on failure. */
void *ts_malloc_at(const char *file, int line, size_t bytes);
void *ts_calloc_at(const char *file, int line, size_t n, size_t size);
#define ts_malloc(n) ts_malloc_at(__FILE__, __LINE__, (n))
#define ts_calloc(n, s) ts_calloc_at(__FILE__, __LINE__, (n), (s))

/* Wall clock in seconds (monotonic). */
double ts_now(void);
/* This process's peak resident memory so far, in bytes (getrusage). */
size_t ts_peak_rss(void);

/* Escape a string into a JSON string literal body (no quotes) into buf. */
void ts_json_escape(char *buf, size_t cap, const char *s);

#ifdef __cplusplus
}
#endif

#endif
