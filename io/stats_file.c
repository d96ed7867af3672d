#include "io/stats_file.h"
#include "core/log.h"
#include "io/io_error.h"

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
    TS_NC_CHECK_GOTO(nc_create(tmp, NC_NETCDF4 | NC_CLOBBER, &nc), err, cap, "%s: %s", path,
                     "cannot create the statistics file");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "channel", s->nchan, &d_chan), err, cap, "%s: %s", path, "defining channel");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "state_channel", s->nstate, &d_state), err, cap, "%s: %s", path,
                     "defining state_channel");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "residual_step", s->nres, &d_res), err, cap, "%s: %s", path,
                     "defining residual_step");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "latitude", s->nlat, &d_lat), err, cap, "%s: %s", path, "defining latitude");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "longitude", s->nlon, &d_lon), err, cap, "%s: %s", path, "defining longitude");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "hour", s->nhour, &d_hour), err, cap, "%s: %s", path, "defining hour");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "dayofyear", TS_STATS_DAYS, &d_doy), err, cap, "%s: %s", path,
                     "defining dayofyear");
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "name_strlen", TS_STATS_NAME_MAX, &d_str), err, cap, "%s: %s", path,
                     "defining name_strlen");

    int dims2[2] = {d_chan, d_str};
    TS_NC_CHECK_GOTO(nc_def_var(nc, "channel_name", NC_CHAR, 2, dims2, &v_name), err, cap, "%s: %s", path,
                     "defining channel_name");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "channel_units", NC_CHAR, 2, dims2, &v_units), err, cap, "%s: %s", path,
                     "defining channel_units");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "mean", NC_DOUBLE, 1, &d_chan, &v_mean), err, cap, "%s: %s", path, "defining mean");
    TS_NC_CHECK_GOTO(put_text(nc, v_mean, "long_name", "area-weighted mean over grid and times"), err, cap, "%s: %s",
                     path, "attributes");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "std", NC_DOUBLE, 1, &d_chan, &v_std), err, cap, "%s: %s", path, "defining std");
    TS_NC_CHECK_GOTO(put_text(nc, v_std, "long_name", "area-weighted standard deviation over grid and times"), err, cap,
                     "%s: %s", path, "attributes");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "residual_hours", NC_INT, 1, &d_res, &v_resh), err, cap, "%s: %s", path,
                     "defining residual_hours");
    TS_NC_CHECK_GOTO(put_text(nc, v_resh, "units", "hours"), err, cap, "%s: %s", path, "attributes");
    int dres[2] = {d_res, d_state};
    TS_NC_CHECK_GOTO(nc_def_var(nc, "residual_mean", NC_DOUBLE, 2, dres, &v_rmean), err, cap, "%s: %s", path,
                     "defining residual_mean");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "residual_std", NC_DOUBLE, 2, dres, &v_rstd), err, cap, "%s: %s", path,
                     "defining residual_std");
    TS_NC_CHECK_GOTO(put_text(nc, v_rstd, "long_name", "area-weighted standard deviation of x(t + step) - x(t)"), err,
                     cap, "%s: %s", path, "attributes");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "latitude", NC_DOUBLE, 1, &d_lat, &v_lat), err, cap, "%s: %s", path,
                     "defining latitude");
    TS_NC_CHECK_GOTO(put_text(nc, v_lat, "units", "degrees_north"), err, cap, "%s: %s", path, "attributes");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "longitude", NC_DOUBLE, 1, &d_lon, &v_lon), err, cap, "%s: %s", path,
                     "defining longitude");
    TS_NC_CHECK_GOTO(put_text(nc, v_lon, "units", "degrees_east"), err, cap, "%s: %s", path, "attributes");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "hour", NC_INT, 1, &d_hour, &v_hour), err, cap, "%s: %s", path, "defining hour");
    TS_NC_CHECK_GOTO(nc_def_var(nc, "dayofyear", NC_INT, 1, &d_doy, &v_doy), err, cap, "%s: %s", path,
                     "defining dayofyear");
    if (s->clim) {
        int dc[5] = {d_state, d_doy, d_hour, d_lat, d_lon};
        size_t chunk[5] = {1, 1, 1, s->nlat, s->nlon};
        TS_NC_CHECK_GOTO(nc_def_var(nc, "climatology", NC_FLOAT, 5, dc, &v_clim), err, cap, "%s: %s", path,
                         "defining climatology");
        TS_NC_CHECK_GOTO(nc_def_var_chunking(nc, v_clim, NC_CHUNKED, chunk), err, cap, "%s: %s", path,
                         "chunking climatology");
        TS_NC_CHECK_GOTO(nc_def_var_deflate(nc, v_clim, 1, 1, 1), err, cap, "%s: %s", path, "compressing climatology");
        char text[160];
        snprintf(text, sizeof text, "day-of-year x hour climatology smoothed over %d days", s->smooth_days);
        TS_NC_CHECK_GOTO(put_text(nc, v_clim, "long_name", text), err, cap, "%s: %s", path, "attributes");
    }
    TS_NC_CHECK_GOTO(put_text(nc, NC_GLOBAL, "tessera_kind", STATS_KIND), err, cap, "%s: %s", path, "attributes");
    int version = STATS_VERSION;
    TS_NC_CHECK_GOTO(nc_put_att_int(nc, NC_GLOBAL, "format_version", NC_INT, 1, &version), err, cap, "%s: %s", path,
                     "attributes");
    TS_NC_CHECK_GOTO(nc_put_att_int(nc, NC_GLOBAL, "smooth_days", NC_INT, 1, &s->smooth_days), err, cap, "%s: %s", path,
                     "attributes");
    long long tfirst = s->time_first, tlast = s->time_last, nt = (long long)s->ntimes;
    TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, "time_first", NC_INT64, 1, &tfirst), err, cap, "%s: %s", path,
                     "attributes");
    TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, "time_last", NC_INT64, 1, &tlast), err, cap, "%s: %s", path,
                     "attributes");
    TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, "ntimes", NC_INT64, 1, &nt), err, cap, "%s: %s", path,
                     "attributes");
    TS_NC_CHECK_GOTO(put_text(nc, NC_GLOBAL, "Conventions", "CF-1.8"), err, cap, "%s: %s", path, "attributes");
    const char *src = "tessera " TESSERA_VERSION " stats";
    TS_NC_CHECK_GOTO(put_text(nc, NC_GLOBAL, "source", src), err, cap, "%s: %s", path, "attributes");
    if (history) TS_NC_CHECK_GOTO(put_text(nc, NC_GLOBAL, "history", history), err, cap, "%s: %s", path, "attributes");
    TS_NC_CHECK_GOTO(nc_enddef(nc), err, cap, "%s: %s", path, "leaving define mode");

    size_t start2[2] = {0, 0}, count2[2] = {s->nchan, TS_STATS_NAME_MAX};
    if (s->nchan) {
        TS_NC_CHECK_GOTO(nc_put_vara_text(nc, v_name, start2, count2, &s->name[0][0]), err, cap, "%s: %s", path,
                         "writing channel_name");
        TS_NC_CHECK_GOTO(nc_put_vara_text(nc, v_units, start2, count2, &s->units[0][0]), err, cap, "%s: %s", path,
                         "writing channel_units");
        TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_mean, s->mean), err, cap, "%s: %s", path, "writing mean");
        TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_std, s->std), err, cap, "%s: %s", path, "writing std");
    }
    if (s->nres) {
        TS_NC_CHECK_GOTO(nc_put_var_int(nc, v_resh, s->res_hours), err, cap, "%s: %s", path, "writing residual_hours");
        if (s->nstate) {
            TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_rmean, s->res_mean), err, cap, "%s: %s", path,
                             "writing residual_mean");
            TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_rstd, s->res_std), err, cap, "%s: %s", path,
                             "writing residual_std");
        }
    }
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_lat, s->lat), err, cap, "%s: %s", path, "writing latitude");
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v_lon, s->lon), err, cap, "%s: %s", path, "writing longitude");
    TS_NC_CHECK_GOTO(nc_put_var_int(nc, v_hour, s->hours), err, cap, "%s: %s", path, "writing hour");
    int doy[TS_STATS_DAYS];
    for (int i = 0; i < TS_STATS_DAYS; i++) doy[i] = i + 1;
    TS_NC_CHECK_GOTO(nc_put_var_int(nc, v_doy, doy), err, cap, "%s: %s", path, "writing dayofyear");
    if (s->clim && s->nstate)
        TS_NC_CHECK_GOTO(nc_put_var_float(nc, v_clim, s->clim), err, cap, "%s: %s", path, "writing climatology");
    TS_NC_CHECK_GOTO(nc_close(nc), err, cap, "%s: %s", path, "closing");
    nc = -1;
    if (rename(tmp, path) != 0)
        return TS_FAIL(err, cap, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
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

#define GET(var, fn, dst, what)                                                                                        \
    do {                                                                                                               \
        int id_;                                                                                                       \
        TS_NC_CHECK_GOTO(nc_inq_varid(nc, var, &id_), err, cap, "%s: %s", path,                                        \
                         "missing variable '" var "' (" what ")");                                                     \
        TS_NC_CHECK_GOTO(fn(nc, id_, dst), err, cap, "%s: %s", path, "reading '" var "'");                             \
    } while (0)

int ts_stats_read(ts_stats *s, const char *path, char *err, size_t cap) {
    memset(s, 0, sizeof *s);
    int nc = -1;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return TS_FAIL(err, cap, "%s: a folder, not a statistics file", path);
    TS_NC_CHECK_GOTO(nc_open(path, NC_NOWRITE, &nc), err, cap, "%s: %s", path, "cannot open the statistics file");
    char kind[128] = {0};
    size_t klen = 0;
    if (nc_inq_attlen(nc, NC_GLOBAL, "tessera_kind", &klen) != NC_NOERR || klen >= sizeof kind ||
        nc_get_att_text(nc, NC_GLOBAL, "tessera_kind", kind) != NC_NOERR || strcmp(kind, STATS_KIND) != 0) {
        TS_FAIL(err, cap, "%s: not a tessera statistics file (no tessera_kind = \"%s\"); write one with tessera stats",
                path, STATS_KIND);
        goto fail;
    }
    size_t nchan, nstate, nres, nlat, nlon, nhour;
    if (dim_len(nc, "channel", &nchan) || dim_len(nc, "state_channel", &nstate) ||
        dim_len(nc, "residual_step", &nres) || dim_len(nc, "latitude", &nlat) || dim_len(nc, "longitude", &nlon) ||
        dim_len(nc, "hour", &nhour)) {
        TS_FAIL(err, cap, "%s: a dimension of the statistics layout is missing", path);
        goto fail;
    }
    int vclim, has_clim = nc_inq_varid(nc, "climatology", &vclim) == NC_NOERR;
    ts_stats_alloc(s, nchan, nstate, nres, nlat, nlon, nhour, has_clim);
    if (nchan) {
        size_t start2[2] = {0, 0}, count2[2] = {nchan, TS_STATS_NAME_MAX};
        int id;
        TS_NC_CHECK_GOTO(nc_inq_varid(nc, "channel_name", &id), err, cap, "%s: %s", path,
                         "missing variable 'channel_name'");
        TS_NC_CHECK_GOTO(nc_get_vara_text(nc, id, start2, count2, &s->name[0][0]), err, cap, "%s: %s", path,
                         "reading 'channel_name'");
        TS_NC_CHECK_GOTO(nc_inq_varid(nc, "channel_units", &id), err, cap, "%s: %s", path,
                         "missing variable 'channel_units'");
        TS_NC_CHECK_GOTO(nc_get_vara_text(nc, id, start2, count2, &s->units[0][0]), err, cap, "%s: %s", path,
                         "reading 'channel_units'");
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
    if (has_clim && nstate)
        TS_NC_CHECK_GOTO(nc_get_var_float(nc, vclim, s->clim), err, cap, "%s: %s", path, "reading 'climatology'");
    nc_get_att_int(nc, NC_GLOBAL, "smooth_days", &s->smooth_days);
    long long v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "time_first", &v) == NC_NOERR) s->time_first = v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "time_last", &v) == NC_NOERR) s->time_last = v;
    if (nc_get_att_longlong(nc, NC_GLOBAL, "ntimes", &v) == NC_NOERR) s->ntimes = (size_t)v;
    TS_NC_CHECK_GOTO(nc_close(nc), err, cap, "%s: %s", path, "closing");
    nc = -1;
    for (size_t i = 0; i < nchan; i++)
        if (!isfinite(s->mean[i]) || !(s->std[i] > 0) || !isfinite(s->std[i])) {
            TS_FAIL(err, cap, "%s: channel '%s' has mean %g and std %g: the statistics are unusable", path, s->name[i],
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
