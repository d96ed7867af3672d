/* A profiling backend: the same table over another backend, each op timed
 * (the inner backend synchronised before and after, so device time is
 * counted where it is spent) and its calls and seconds summed by name. The
 * benchmark uses it to say where a training step's time goes. */
#ifndef TESSERA_CORE_PROFILE_H
#define TESSERA_CORE_PROFILE_H

#include "core/backend.h"

enum { TS_PROFILE_OPS = 32 };

typedef struct {
    const char *name;
    long calls;
    double seconds;
} ts_profile_entry;

/* The profiled table over `inner` (one at a time: the wrappers share state). */
const ts_backend *ts_profile_backend(const ts_backend *inner);
void ts_profile_reset(void);
/* Entries with at least one call, most time first; returns their count. */
int ts_profile_entries(ts_profile_entry *out, int cap);

#endif
