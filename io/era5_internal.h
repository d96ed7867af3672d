/* The ERA5 reader's insides, shared by its files (not an API):
 *   era5_meta.c      opening: attributes, time units, the open-file
 *                    cache, axes and orientation, truncated classic files
 *   era5_channels.c  channels bound to files, and the dataset's time axis
 *   era5_grid.c      cell areas, conservative coarsening, the exposed grid
 *   era5_blocks.c    reading blocks with the fill policy, open and close,
 *                    accessors, configuration and file lists
 *   era5_pack.c      the metadata as bytes for other ranks, and back
 */
#ifndef TESSERA_IO_ERA5_INTERNAL_H
#define TESSERA_IO_ERA5_INTERNAL_H

#include <netcdf.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "io/era5_read.h"
#include "io/io_error.h"

/* Files kept open at once; older ones are closed and reopened on demand,
 * so thousands of daily files stay under the descriptor limit. */
enum { MAX_OPEN_FILES = 64, NAME_CAP = 64 };

#define DEG2RAD (3.14159265358979323846 / 180.0)
#define COORD_TOL 1e-4 /* degrees: float-stored coordinates of the same grid agree to this */
#define LEVEL_TOL 1e-3 /* hPa */

typedef struct {
    char *path;
    int ncid; /* -1 while the open-file cache has it closed */
    unsigned long last_use;
    size_t nlat, nlon;                       /* stored grid */
    int flip;                                /* stored south to north: source row r is stored row nlat-1-r */
    size_t *col;                             /* (nlon) source column j is stored column col[j] */
    int time_dim, lev_dim, lat_dim, lon_dim; /* -1 when absent */
    size_t ntime;
    int64_t *time; /* (ntime) unix seconds, increasing */
    size_t nlev;
    double *lev;       /* (nlev) hPa */
    double *lat, *lon; /* (nlat), (nlon) in source order */
    size_t nvars;
    char **vname;        /* (nvars) the file's variables, listed once at open so that */
    unsigned char *vlev; /* (nvars) channel lookups need no netCDF call; 1: on levels */
} src_file;

typedef struct { /* one channel's variable in one file */
    int varid;   /* -1: this file does not hold the channel */
    int has_time;
    size_t lev;           /* index of the channel's level in the file */
    double scale, offset; /* value = raw * scale + offset */
    size_t nmiss;
    double miss[3]; /* raw values that mean missing: _FillValue, missing_value, netCDF's default */
} chan_file;

typedef struct { /* dataset times [t0, t0+n) are the file's records rec0.. */
    size_t t0, n, file, rec0;
    int64_t first; /* the file's first time, the sort key */
} segment;

typedef struct {
    ts_era5_channel pub;
    char spec[NAME_CAP], var[NAME_CAP];
    char *units, *long_name, *standard_name;
    int on_levels;
    chan_file *in; /* (nfiles) */
    segment *seg;  /* (nseg) time-varying channels, in time order */
    size_t nseg;
    size_t static_file; /* static channels: the file whose first record serves every time */
} channel;

typedef struct { /* source cells overlapping one target cell along one axis */
    long first;  /* first source index; columns are taken modulo the source width */
    size_t n;
    double *w; /* (n) overlap: sin-latitude band for rows, degrees for columns */
    double wsum;
} overlap;

typedef struct {
    size_t nrow, ncol;
    overlap *row; /* (nrow) one per target row */
    overlap *col; /* (ncol) one per target column */
} regrid;

struct ts_era5_dataset {
    src_file *file; /* (nfiles) */
    size_t nfiles;
    channel *ch; /* (nstate + nforcing) state first */
    size_t nstate, nforcing;
    size_t ntime;
    int64_t *time; /* (ntime) */
    ts_era5_fill fill;
    double *src_area; /* (source rows) sin-latitude band of each source row, for fill=mean */
    regrid *rg;       /* NULL on the native grid */
    ts_era5_grid grid;
    double *lat, *lon;   /* (grid.nlat), (grid.nlon) */
    unsigned char *mask; /* (grid.nlat) */
    size_t nopen;
    unsigned long clock;
    char *err;
    size_t errcap;
};

/* era5_meta.c */
void era5_iso_time(int64_t t, char *buf, size_t cap);
char *era5_dup_str(const char *s);
size_t era5_min_sz(size_t a, size_t b);
long era5_mod_l(long a, long n);
int era5_get_text_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                      char **out);
int era5_get_num_att(ts_era5_dataset *ds, const src_file *f, int varid, const char *what, const char *name,
                     double *value, int *found);
int era5_ensure_open(ts_era5_dataset *ds, src_file *f);
int era5_same_coords(const double *a, const double *b, size_t n);
int era5_open_files(ts_era5_dataset *ds, const char *const *paths, size_t npaths);

/* era5_channels.c */
int era5_bind_channels(ts_era5_dataset *ds);
size_t era5_count_tokens(const char *list);
int era5_add_channels(ts_era5_dataset *ds, const char *list, int forcing, size_t *next);
int era5_build_time_axis(ts_era5_dataset *ds);

/* era5_blocks.c: the public view of the channels, after they are bound */
void era5_publish_channels(ts_era5_dataset *ds);

/* era5_grid.c */
double era5_band(double hi, double lo);
void era5_source_areas(ts_era5_dataset *ds);
void era5_free_regrid(regrid *rg);
int era5_setup_grid(ts_era5_dataset *ds, const ts_era5_open_opts *o);

#endif
