/* The statistics file of `tessera stats` (docs/formats.md, "Statistics"):
 * per-channel mean and standard deviation, per-channel mean and standard
 * deviation of the residuals x(t + dt) - x(t) for each time step dt, and a
 * day-of-year x hour-of-day climatology of the state channels smoothed over
 * a window of days. One NetCDF-4 file, written to a temporary name and
 * renamed; a checkpoint carries a copy of the same numbers.
 */
#ifndef TESSERA_IO_STATS_FILE_H
#define TESSERA_IO_STATS_FILE_H

#include <stddef.h>
#include <stdint.h>

enum { TS_STATS_DAYS = 366, TS_STATS_NAME_MAX = 64 };

typedef struct {
    size_t nchan;                 /* state channels first, then forcings */
    size_t nstate;
    char (*name)[TS_STATS_NAME_MAX];  /* (nchan) channel specs: "z500", "t2m", "tisr" */
    char (*units)[TS_STATS_NAME_MAX]; /* (nchan) */
    double *mean, *std;           /* (nchan) area-weighted over grid and time */
    size_t nres;
    int *res_hours;               /* (nres) residual time steps, hours */
    double *res_mean, *res_std;   /* (nres, nstate) */
    size_t nlat, nlon;
    double *lat, *lon;            /* (nlat), (nlon) the grid of the climatology */
    size_t nhour;                 /* climatology hours of the day: 24 / data step */
    int *hours;                   /* (nhour) */
    int smooth_days;              /* window of the day-of-year smoothing */
    float *clim;                  /* (nstate, 366, nhour, nlat, nlon), or NULL when not computed */
    int64_t time_first, time_last; /* unix seconds of the data the statistics come from */
    size_t ntimes;
} ts_stats;

/* Allocates the arrays for the given sizes (zeroed; clim only when with_clim). */
void ts_stats_alloc(ts_stats *s, size_t nchan, size_t nstate, size_t nres, size_t nlat, size_t nlon, size_t nhour,
                    int with_clim);
void ts_stats_free(ts_stats *s);

/* Index of a channel by name, or -1. */
int ts_stats_channel(const ts_stats *s, const char *name);

/* Write to `path` (via path + ".part" and a rename); `history` is the
 * resolved configuration. Returns 0 or -1 with one line in err. */
int ts_stats_write(const ts_stats *s, const char *path, const char *history, char *err, size_t errcap);
/* Read a file written by ts_stats_write; a file of another kind, a missing
 * variable or non-finite statistics are errors naming the file. */
int ts_stats_read(ts_stats *s, const char *path, char *err, size_t errcap);

#endif
