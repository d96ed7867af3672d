#include "io/stats_file.h"
#include "core/log.h"

#include <errno.h>
#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file's `tessera_kind` attribute: how a stats file is told from others. */
#define STATS_KIND "tessera normalization statistics"
#define STATS_VERSION 1

void ts_stats_alloc(ts_stats *s, size_t nchan, size_t nstate, size_t nres, size_t nlat, size_t nlon, size_t nhour,
                    int with_clim) {
    memset(s, 0, sizeof *s);
    s->nchan = nchan, s->nstate = nstate, s->nres = nres, s->nlat = nlat, s->nlon = nlon, s->nhour = nhour;
    s->name = ts_calloc(nchan, TS_STATS_NAME_MAX);
    s->units = ts_calloc(nchan, TS_STATS_NAME_MAX);
    s->mean = ts_calloc(nchan, sizeof(double));
    s->std = ts_calloc(nchan, sizeof(double));
    s->res_hours = ts_calloc(nres, sizeof(int));
    s->res_mean = ts_calloc(nres * nstate, sizeof(double));
    s->res_std = ts_calloc(nres * nstate, sizeof(double));
    s->lat = ts_calloc(nlat, sizeof(double));
    s->lon = ts_calloc(nlon, sizeof(double));
    s->hours = ts_calloc(nhour, sizeof(int));
    if (with_clim) s->clim = ts_calloc(nstate * TS_STATS_DAYS * nhour * nlat * nlon, sizeof(float));
}

void ts_stats_free(ts_stats *s) {
    free(s->name), free(s->units), free(s->mean), free(s->std), free(s->res_hours), free(s->res_mean);
    free(s->res_std), free(s->lat), free(s->lon), free(s->hours), free(s->clim);
    memset(s, 0, sizeof *s);
}

int ts_stats_channel(const ts_stats *s, const char *name) {
    for (size_t i = 0; i < s->nchan; i++)
        if (strcmp(s->name[i], name) == 0) return (int)i;
    return -1;
}

/* ---- errors ------------------------------------------------------------------ */

static int fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* One netCDF call checked: on failure, one line naming the file, what was
 * being done, our source line and netCDF's own message. */
#define NC(call, what)                                                                                         \
    do {                                                                                                       \
        int rc_ = (call);                                                                                      \
        if (rc_ != NC_NOERR) {                                                                                 \
            fail(err, cap, "%s: %s: %s (%s:%d)", path, (what), nc_strerror(rc_), __FILE__, __LINE__);       \
            goto fail;                                                                                         \
        }                                                                                                      \
    } while (0)

/* ---- write ------------------------------------------------------------------- */

static int put_text(int nc, int var, const char *name, const char *text) {
    return nc_put_att_text(nc, var, name, strlen(text), text);
}

int ts_stats_write(const ts_stats *s, const char *path, const char *history, char *err, size_t cap) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    int nc = -1;
    int d_chan, d_state, d_res, d_lat, d_lon, d_hour, d_doy, d_str;
    int v_name, v_units, v_mean, v_std, v_resh, v_rmean, v_rstd, v_lat, v_lon, v_hour, v_doy, v_clim = -1;
    NC(nc_create(tmp, NC_NETCDF4 | NC_CLOBBER, &nc), "cannot create the statistics file");
    NC(nc_def_dim(nc, "channel", s->nchan, &d_chan), "defining channel");
    NC(nc_def_dim(nc, "state_channel", s->nstate, &d_state), "defining state_channel");
    NC(nc_def_dim(nc, "residual_step", s->nres, &d_res), "defining residual_step");
    NC(nc_def_dim(nc, "latitude", s->nlat, &d_lat), "defining latitude");
    NC(nc_def_dim(nc, "longitude", s->nlon, &d_lon), "defining longitude");
    NC(nc_def_dim(nc, "hour", s->nhour, &d_hour), "defining hour");
    NC(nc_def_dim(nc, "dayofyear", TS_STATS_DAYS, &d_doy), "defining dayofyear");
    NC(nc_def_dim(nc, "name_strlen", TS_STATS_NAME_MAX, &d_str), "defining name_strlen");

    int dims2[2] = {d_chan, d_str};
    NC(nc_def_var(nc, "channel_name", NC_CHAR, 2, dims2, &v_name), "defining channel_name");
    NC(nc_def_var(nc, "channel_units", NC_CHAR, 2, dims2, &v_units), "defining channel_units");
    NC(nc_def_var(nc, "mean", NC_DOUBLE, 1, &d_chan, &v_mean), "defining mean");
    NC(put_text(nc, v_mean, "long_name", "area-weighted mean over grid and times"), "attributes");
    NC(nc_def_var(nc, "std", NC_DOUBLE, 1, &d_chan, &v_std), "defining std");
    NC(put_text(nc, v_std, "long_name", "area-weighted standard deviation over grid and times"), "attributes");
    NC(nc_def_var(nc, "residual_hours", NC_INT, 1, &d_res, &v_resh), "defining residual_hours");
    NC(put_text(nc, v_resh, "units", "hours"), "attributes");
    int dres[2] = {d_res, d_state};
    NC(nc_def_var(nc, "residual_mean", NC_DOUBLE, 2, dres, &v_rmean), "defining residual_mean");
    NC(nc_def_var(nc, "residual_std", NC_DOUBLE, 2, dres, &v_rstd), "defining residual_std");
    NC(put_text(nc, v_rstd, "long_name", "area-weighted standard deviation of x(t + step) - x(t)"), "attributes");
    NC(nc_def_var(nc, "latitude", NC_DOUBLE, 1, &d_lat, &v_lat), "defining latitude");
    NC(put_text(nc, v_lat, "units", "degrees_north"), "attributes");
    NC(nc_def_var(nc, "longitude", NC_DOUBLE, 1, &d_lon, &v_lon), "defining longitude");
    NC(put_text(nc, v_lon, "units", "degrees_east"), "attributes");
    NC(nc_def_var(nc, "hour", NC_INT, 1, &d_hour, &v_hour), "defining hour");
    NC(nc_def_var(nc, "dayofyear", NC_INT, 1, &d_doy, &v_doy), "defining dayofyear");
    if (s->clim) {
        int dc[5] = {d_state, d_doy, d_hour, d_lat, d_lon};
        size_t chunk[5] = {1, 1, 1, s->nlat, s->nlon};
        NC(nc_def_var(nc, "climatology", NC_FLOAT, 5, dc, &v_clim), "defining climatology");
        NC(nc_def_var_chunking(nc, v_clim, NC_CHUNKED, chunk), "chunking climatology");
        NC(nc_def_var_deflate(nc, v_clim, 1, 1, 1), "compressing climatology");
        char text[160];
        snprintf(text, sizeof text, "day-of-year x hour climatology smoothed over %d days", s->smooth_days);
        NC(put_text(nc, v_clim, "long_name", text), "attributes");
    }
    NC(put_text(nc, NC_GLOBAL, "tessera_kind", STATS_KIND), "attributes");
    int version = STATS_VERSION;
    NC(nc_put_att_int(nc, NC_GLOBAL, "format_version", NC_INT, 1, &version), "attributes");
    NC(nc_put_att_int(nc, NC_GLOBAL, "smooth_days", NC_INT, 1, &s->smooth_days), "attributes");
    long long tfirst = s->time_first, tlast = s->time_last, nt = (long long)s->ntimes;
    NC(nc_put_att_longlong(nc, NC_GLOBAL, "time_first", NC_INT64, 1, &tfirst), "attributes");
    NC(nc_put_att_longlong(nc, NC_GLOBAL, "time_last", NC_INT64, 1, &tlast), "attributes");
    NC(nc_put_att_longlong(nc, NC_GLOBAL, "ntimes", NC_INT64, 1, &nt), "attributes");
    NC(put_text(nc, NC_GLOBAL, "Conventions", "CF-1.8"), "attributes");
    const char *src = "tessera " TESSERA_VERSION " stats";
    NC(put_text(nc, NC_GLOBAL, "source", src), "attributes");
    if (history) NC(put_text(nc, NC_GLOBAL, "history", history), "attributes");
    NC(nc_enddef(nc), "leaving define mode");

    size_t start2[2] = {0, 0}, count2[2] = {s->nchan, TS_STATS_NAME_MAX};
    if (s->nchan) {
        NC(nc_put_vara_text(nc, v_name, start2, count2, &s->name[0][0]), "writing channel_name");
        NC(nc_put_vara_text(nc, v_units, start2, count2, &s->units[0][0]), "writing channel_units");
        NC(nc_put_var_double(nc, v_mean, s->mean), "writing mean");
        NC(nc_put_var_double(nc, v_std, s->std), "writing std");
    }
    if (s->nres) {
        NC(nc_put_var_int(nc, v_resh, s->res_hours), "writing residual_hours");
        if (s->nstate) {
            NC(nc_put_var_double(nc, v_rmean, s->res_mean), "writing residual_mean");
            NC(nc_put_var_double(nc, v_rstd, s->res_std), "writing residual_std");
        }
    }
    NC(nc_put_var_double(nc, v_lat, s->lat), "writing latitude");
    NC(nc_put_var_double(nc, v_lon, s->lon), "writing longitude");
    NC(nc_put_var_int(nc, v_hour, s->hours), "writing hour");
    int doy[TS_STATS_DAYS];
    for (int i = 0; i < TS_STATS_DAYS; i++) doy[i] = i + 1;
    NC(nc_put_var_int(nc, v_doy, doy), "writing dayofyear");
    if (s->clim && s->nstate) NC(nc_put_var_float(nc, v_clim, s->clim), "writing climatology");
    NC(nc_close(nc), "closing");
    nc = -1;
    if (rename(tmp, path) != 0) return fail(err, cap, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    return 0;
fail:
    if (nc >= 0) nc_close(nc);
    unlink(tmp);
    return -1;
}

/* ---- read -------------------------------------------------------------------- */

static int dim_len(int nc, const char *name, size_t *len) {
    int id;
    if (nc_inq_dimid(nc, name, &id) != NC_NOERR) return -1;
    return nc_inq_dimlen(nc, id, len) == NC_NOERR ? 0 : -1;
}

#define GET(var, fn, dst, what)                                                                   \
    do {                                                                                          \
        int id_;                                                                                  \
        NC(nc_inq_varid(nc, var, &id_), "missing variable '" var "' (" what ")");                 \
        NC(fn(nc, id_, dst), "reading '" var "'");                                                \
    } while (0)

int ts_stats_read(ts_stats *s, const char *path, char *err, size_t cap) {
    memset(s, 0, sizeof *s);
    int nc = -1;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return fail(err, cap, "%s: a folder, not a statistics file", path);
    NC(nc_open(path, NC_NOWRITE, &nc), "cannot open the statistics file");
    char kind[128] = {0};
    size_t klen = 0;
    if (nc_inq_attlen(nc, NC_GLOBAL, "tessera_kind", &klen) != NC_NOERR || klen >= sizeof kind ||
        nc_get_att_text(nc, NC_GLOBAL, "tessera_kind", kind) != NC_NOERR || strcmp(kind, STATS_KIND) != 0) {
        fail(err, cap, "%s: not a tessera statistics file (no tessera_kind = \"%s\"); write one with tessera stats",
             path, STATS_KIND);
        goto fail;
    }
    size_t nchan, nstate, nres, nlat, nlon, nhour;
    if (dim_len(nc, "channel", &nchan) || dim_len(nc, "state_channel", &nstate) ||
        dim_len(nc, "residual_step", &nres) || dim_len(nc, "latitude", &nlat) || dim_len(nc, "longitude", &nlon) ||
        dim_len(nc, "hour", &nhour)) {
        fail(err, cap, "%s: a dimension of the statistics layout is missing", path);
        goto fail;
    }
    int vclim, has_clim = nc_inq_varid(nc, "climatology", &vclim) == NC_NOERR;
    ts_stats_alloc(s, nchan, nstate, nres, nlat, nlon, nhour, has_clim);
    if (nchan) {
        size_t start2[2] = {0, 0}, count2[2] = {nchan, TS_STATS_NAME_MAX};
        int id;
        NC(nc_inq_varid(nc, "channel_name", &id), "missing variable 'channel_name'");
        NC(nc_get_vara_text(nc, id, start2, count2, &s->name[0][0]), "reading 'channel_name'");
        NC(nc_inq_varid(nc, "channel_units", &id), "missing variable 'channel_units'");
        NC(nc_get_vara_text(nc, id, start2, count2, &s->units[0][0]), "reading 'channel_units'");
        for (size_t i = 0; i < nchan; i++) s->name[i][TS_STATS_NAME_MAX - 1] = s->units[i][TS_STATS_NAME_MAX - 1] = 0;
        GET("mean", nc_get_var_double, s->mean, "per-channel means");
        GET("std", nc_get_var_double, s->std, "per-channel standard deviations");
    }
    if (nres) {
        GET("residual_hours", nc_get_var_int, s->res_hours, "residual steps");
        if (nstate) {
            GET("residual_mean", nc_get_var_double, s->res_mean, "residual means");
            GET("residual_std", nc_get_var_double, s->res_std, "residual standard deviations");
        }
    }
    GET("latitude", nc_get_var_double, s->lat, "grid");
    GET("longitude", nc_get_var_double, s->lon, "grid");
    GET("hour", nc_get_var_int, s->hours, "climatology hours");
    if (has_clim && nstate) NC(nc_get_var_float(nc, vclim, s->clim), "reading 'climatology'");
    nc_get_att_int(nc, NC_GLOBAL, "smooth_days", &s->smooth_days);
    long long v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "time_first", &v) == NC_NOERR) s->time_first = v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "time_last", &v) == NC_NOERR) s->time_last = v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "ntimes", &v) == NC_NOERR) s->ntimes = (size_t)v;
    NC(nc_close(nc), "closing");
    nc = -1;
    for (size_t i = 0; i < nchan; i++)
        if (!isfinite(s->mean[i]) || !(s->std[i] > 0) || !isfinite(s->std[i])) {
            fail(err, cap, "%s: channel '%s' has mean %g and std %g: the statistics are unusable", path, s->name[i],
                 s->mean[i], s->std[i]);
            ts_stats_free(s);
            return -1;
        }
    return 0;
fail:
    if (nc >= 0) nc_close(nc);
    ts_stats_free(s);
    return -1;
}
