/* The ERA5 reader's channels: each bound to the file holding its variable
 * (and level), and the dataset's time axis from the files' records. */
#include "io/era5_internal.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"

/* ---- channels -------------------------------------------------------------------------- */

static void dim_list(const src_file *f, const int *dims, int nd, char *buf, size_t cap) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < nd && used < cap; i++) {
        char name[NC_MAX_NAME + 1] = "?";
        nc_inq_dimname(f->ncid, dims[i], name); /* a name for a message only: "?" if it fails */
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

/* The variable must be (time, [level,] latitude, longitude); a static
 * channel may also come without time. */
static int check_dims(ts_era5_dataset *ds, const channel *c, const src_file *f, const int *dims, int nd,
                      int *has_time) {
    int want[4], nw = 0;
    *has_time = nd > 0 && dims[0] == f->time_dim && f->time_dim >= 0;
    if (*has_time || !c->pub.is_static) want[nw++] = f->time_dim;
    if (c->on_levels) want[nw++] = f->lev_dim;
    want[nw++] = f->lat_dim;
    want[nw++] = f->lon_dim;
    int ok = nd == nw;
    for (int i = 0; ok && i < nw; i++) ok = dims[i] == want[i] && want[i] >= 0;
    if (ok) return 0;
    char have[256], expect[256];
    dim_list(f, dims, nd, have, sizeof have);
    if (want[0] < 0) /* no time dimension in the file at all */
        return TS_FAIL(ds->err, ds->errcap, "%s: variable %s has dimensions (%s) and the file has no time dimension",
                       f->path, c->var, have);
    dim_list(f, want, nw, expect, sizeof expect);
    return TS_FAIL(ds->err, ds->errcap, "%s: variable %s has dimensions (%s); expected (%s)%s", f->path, c->var, have,
                   expect, strstr(have, "expver") ? " (ERA5/ERA5T mixed along expver: select one expver first)" : "");
}

static int find_level(ts_era5_dataset *ds, const channel *c, const src_file *f, size_t *index) {
    for (size_t k = 0; k < f->nlev; k++)
        if (fabs(f->lev[k] - c->pub.level_hpa) < LEVEL_TOL) {
            *index = k;
            return 0;
        }
    char have[256] = "";
    size_t used = 0;
    for (size_t k = 0; k < f->nlev && used < sizeof have; k++) {
        int n = snprintf(have + used, sizeof have - used, "%s%g", k ? ", " : "", f->lev[k]);
        if (n < 0) break;
        used += (size_t)n;
    }
    return TS_FAIL(ds->err, ds->errcap, "%s: variable %s: no level %g hPa for channel %s (levels: %s)", f->path, c->var,
                   c->pub.level_hpa, c->spec, have);
}

/* Which raw values mean "missing": _FillValue and missing_value, or
 * netCDF's default fill of the type when the file declares no _FillValue. */
static int read_missing(ts_era5_dataset *ds, const src_file *f, int varid, const char *var, chan_file *cf) {
    double v;
    int found;
    nc_type type;
    TS_NC_CHECK(nc_inq_vartype(f->ncid, varid, &type), ds->err, ds->errcap, "%s: %s", f->path, var);
    if (type == NC_CHAR || type == NC_STRING)
        return TS_FAIL(ds->err, ds->errcap, "%s: variable %s holds text, not numbers", f->path, var);
    cf->nmiss = 0;
    if (era5_get_num_att(ds, f, varid, var, "_FillValue", &v, &found)) return -1;
    if (found)
        cf->miss[cf->nmiss++] = v;
    else if (type == NC_FLOAT)
        cf->miss[cf->nmiss++] = NC_FILL_FLOAT;
    else if (type == NC_DOUBLE)
        cf->miss[cf->nmiss++] = NC_FILL_DOUBLE;
    else if (type == NC_SHORT)
        cf->miss[cf->nmiss++] = NC_FILL_SHORT;
    else if (type == NC_INT)
        cf->miss[cf->nmiss++] = NC_FILL_INT;
    if (era5_get_num_att(ds, f, varid, var, "missing_value", &v, &found)) return -1;
    if (found) cf->miss[cf->nmiss++] = v;
    if (era5_get_num_att(ds, f, varid, var, "scale_factor", &cf->scale, &found)) return -1;
    if (!found) cf->scale = 1;
    if (era5_get_num_att(ds, f, varid, var, "add_offset", &cf->offset, &found)) return -1;
    if (!found) cf->offset = 0;
    return 0;
}

/* Does file f hold `name` on levels (on_levels 1) or not (0)? */
static int has_var(const src_file *f, const char *name, int on_levels) {
    for (size_t v = 0; v < f->nvars; v++)
        if (strcmp(f->vname[v], name) == 0) return f->vlev[v] == on_levels;
    return 0;
}

static int bind_file(ts_era5_dataset *ds, channel *c, size_t fi) {
    src_file *f = &ds->file[fi];
    chan_file *cf = &c->in[fi];
    int varid, nd, dims[NC_MAX_VAR_DIMS];
    cf->varid = -1;
    if (!has_var(f, c->var, c->on_levels)) return 0;
    TS_NC_CHECK(nc_inq_varid(f->ncid, c->var, &varid), ds->err, ds->errcap, "%s: %s", f->path, c->var);
    TS_NC_CHECK(nc_inq_varndims(f->ncid, varid, &nd), ds->err, ds->errcap, "%s: %s", f->path, c->var);
    TS_NC_CHECK(nc_inq_vardimid(f->ncid, varid, dims), ds->err, ds->errcap, "%s: %s", f->path, c->var);
    if (check_dims(ds, c, f, dims, nd, &cf->has_time)) return -1;
    if (c->on_levels && find_level(ds, c, f, &cf->lev)) return -1;
    if (read_missing(ds, f, varid, c->var, cf)) return -1;
    if (!c->units && (era5_get_text_att(ds, f, varid, c->var, "units", &c->units) ||
                      era5_get_text_att(ds, f, varid, c->var, "long_name", &c->long_name) ||
                      era5_get_text_att(ds, f, varid, c->var, "standard_name", &c->standard_name)))
        return -1;
    if (!c->units) c->units = era5_dup_str("");
    cf->varid = varid;
    return 0;
}

static void file_list(const ts_era5_dataset *ds, char *buf, size_t cap) {
    size_t used = 0, shown = ds->nfiles < 4 ? ds->nfiles : 3;
    buf[0] = '\0';
    for (size_t i = 0; i < shown && used < cap; i++) {
        int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", ds->file[i].path);
        if (n < 0) return;
        used += (size_t)n;
    }
    if (shown < ds->nfiles && used < cap) snprintf(buf + used, cap - used, " and %zu more", ds->nfiles - shown);
}

static int any_file_has(const ts_era5_dataset *ds, const char *name, int on_levels) {
    for (size_t i = 0; i < ds->nfiles; i++)
        if (has_var(&ds->file[i], name, on_levels)) return 1;
    return 0;
}

/* "t2m" (a single-level name in the files), "z500" (name + level in hPa),
 * "z_surface" (the single-level file's z). A full single-level name wins
 * over a split, so u10 is the 10 m wind, never u at 10 hPa. */
static void parse_channel(const ts_era5_dataset *ds, channel *c, const char *tok /* < NAME_CAP */, int forcing) {
    memcpy(c->spec, tok, strlen(tok) + 1);
    if (forcing && strcmp(tok, "z_surface") == 0) {
        snprintf(c->var, sizeof c->var, "z");
        c->pub.is_static = 1;
        return;
    }
    int sl = any_file_has(ds, tok, 0);
    size_t len = strlen(tok), k = len;
    while (k > 0 && isdigit((unsigned char)tok[k - 1])) k--;
    if (sl || k == 0 || k == len) {
        memcpy(c->var, tok, len + 1);
        c->pub.is_static = forcing && strcmp(tok, "lsm") == 0;
        return;
    }
    memcpy(c->var, tok, k);
    c->var[k] = '\0';
    c->on_levels = 1;
    c->pub.level_hpa = atof(tok + k);
}

static int unbound_error(ts_era5_dataset *ds, const channel *c, int forcing) {
    char files[512];
    const char *list = forcing ? "forcings" : "variables";
    file_list(ds, files, sizeof files);
    if (!c->on_levels && any_file_has(ds, c->var, 1))
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: variable %s is on pressure levels: name a level, e.g. %s500 (channel %s of data.%s)", files,
                       c->var, c->var, c->spec, list);
    if (c->on_levels)
        return TS_FAIL(
            ds->err, ds->errcap,
            "%s: variable %s not found: neither a single-level %s nor %s on pressure levels (channel %s of data.%s)",
            files, c->spec, c->spec, c->var, c->spec, list);
    return TS_FAIL(ds->err, ds->errcap, "%s: variable %s not found (channel %s of data.%s)", files, c->var, c->spec,
                   list);
}

/* Files outer, channels inner: each file is opened once even when the
 * open-file cache holds fewer files than the dataset. */
int era5_bind_channels(ts_era5_dataset *ds) {
    size_t nch = ds->nstate + ds->nforcing;
    for (size_t i = 0; i < ds->nfiles; i++) {
        if (era5_ensure_open(ds, &ds->file[i])) return -1;
        for (size_t k = 0; k < nch; k++)
            if (bind_file(ds, &ds->ch[k], i)) return -1;
    }
    for (size_t k = 0; k < nch; k++) {
        int bound = 0;
        for (size_t i = 0; i < ds->nfiles; i++) bound |= ds->ch[k].in[i].varid >= 0;
        if (!bound) return unbound_error(ds, &ds->ch[k], k >= ds->nstate);
    }
    return 0;
}

size_t era5_count_tokens(const char *list) {
    size_t n = 0;
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ",");
        size_t a = 0, b = len;
        while (a < b && isspace((unsigned char)p[a])) a++;
        n += a < b;
        p += len + (p[len] == ',');
    }
    return n;
}

/* Channels from a comma list into ds->ch starting at *next. */
int era5_add_channels(ts_era5_dataset *ds, const char *list, int forcing, size_t *next) {
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ","), a = 0, b = len;
        while (a < b && isspace((unsigned char)p[a])) a++;
        while (b > a && isspace((unsigned char)p[b - 1])) b--;
        if (b - a >= NAME_CAP)
            return TS_FAIL(ds->err, ds->errcap, "channel name \"%.*s\" is too long", (int)(b - a), p + a);
        if (a < b) {
            char tok[NAME_CAP];
            memcpy(tok, p + a, b - a);
            tok[b - a] = '\0';
            for (size_t i = 0; i < *next; i++)
                if (strcmp(ds->ch[i].spec, tok) == 0)
                    return TS_FAIL(ds->err, ds->errcap, "data.%s: channel %s is listed twice",
                                   forcing ? "forcings" : "variables", tok);
            channel *c = &ds->ch[(*next)++];
            c->in = ts_calloc(ds->nfiles, sizeof *c->in);
            parse_channel(ds, c, tok, forcing);
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

/* ---- the time axis ---------------------------------------------------------------------- */

static int by_first_time(const void *a, const void *b) {
    const segment *x = a, *y = b;
    return (x->first > y->first) - (x->first < y->first);
}

/* The channel's files in time order, one segment each; they must not
 * overlap. */
static int build_segments(ts_era5_dataset *ds, channel *c) {
    c->seg = ts_calloc(ds->nfiles, sizeof *c->seg);
    c->nseg = 0;
    for (size_t i = 0; i < ds->nfiles; i++)
        if (c->in[i].varid >= 0 && c->in[i].has_time && ds->file[i].ntime > 0)
            c->seg[c->nseg++] = (segment){.file = i, .n = ds->file[i].ntime, .first = ds->file[i].time[0]};
    if (c->nseg == 0)
        return TS_FAIL(ds->err, ds->errcap, "%s: variable %s (channel %s) has no valid times", ds->file[0].path, c->var,
                       c->spec);
    qsort(c->seg, c->nseg, sizeof *c->seg, by_first_time);
    size_t t0 = 0;
    for (size_t s = 0; s < c->nseg; s++) {
        const src_file *f = &ds->file[c->seg[s].file];
        if (s > 0) {
            const src_file *p = &ds->file[c->seg[s - 1].file];
            if (f->time[0] <= p->time[p->ntime - 1]) {
                char a[32];
                era5_iso_time(f->time[0], a, sizeof a);
                return TS_FAIL(ds->err, ds->errcap, "%s: variable %s: time %s is also in %s (files overlap in time)",
                               f->path, c->var, a, p->path);
            }
        }
        c->seg[s].t0 = t0;
        t0 += f->ntime;
    }
    return 0;
}

static int64_t seg_time(const ts_era5_dataset *ds, const channel *c, size_t t, size_t *s) {
    while (*s + 1 < c->nseg && c->seg[*s + 1].t0 <= t) (*s)++;
    const segment *g = &c->seg[*s];
    return ds->file[g->file].time[g->rec0 + t - g->t0];
}

static size_t seg_total(const channel *c) { return c->nseg ? c->seg[c->nseg - 1].t0 + c->seg[c->nseg - 1].n : 0; }

/* Every time-varying channel must cover exactly the dataset's times. */
static int match_times(ts_era5_dataset *ds, const channel *ref, const channel *c) {
    size_t n = seg_total(c), s = 0;
    for (size_t t = 0; t < ds->ntime && t < n; t++) {
        int64_t tc = seg_time(ds, c, t, &s);
        if (tc == ds->time[t]) continue;
        char a[32], b[32];
        era5_iso_time(ds->time[t], a, sizeof a);
        era5_iso_time(tc, b, sizeof b);
        return TS_FAIL(ds->err, ds->errcap,
                       "%s: variable %s: valid time %s where %s has %s (every channel needs the same times)",
                       ds->file[c->seg[s].file].path, c->var, b, ref->spec, a);
    }
    if (n == ds->ntime) return 0;
    char a[32];
    const segment *last = &c->seg[c->nseg - 1];
    era5_iso_time(n < ds->ntime ? ds->time[n] : seg_time(ds, c, ds->ntime, &s), a, sizeof a);
    return TS_FAIL(ds->err, ds->errcap,
                   "%s: variable %s: %zu valid times where %s has %zu (%s is in one and not the other)",
                   ds->file[last->file].path, c->var, n, ref->spec, ds->ntime, a);
}

static void pick_static(ts_era5_dataset *ds, channel *c) {
    int64_t best = INT64_MAX;
    int any = 0;
    for (size_t i = 0; i < ds->nfiles; i++) {
        if (c->in[i].varid < 0) continue;
        const src_file *f = &ds->file[i];
        int64_t first = c->in[i].has_time && f->ntime ? f->time[0] : INT64_MAX;
        if (!any || first < best) c->static_file = i, best = first;
        any = 1;
    }
}

int era5_build_time_axis(ts_era5_dataset *ds) {
    const channel *ref = NULL;
    size_t nch = ds->nstate + ds->nforcing;
    for (size_t i = 0; i < nch; i++) {
        channel *c = &ds->ch[i];
        if (c->pub.is_static) {
            pick_static(ds, c);
            continue;
        }
        if (build_segments(ds, c)) return -1;
        if (!ref) {
            ref = c;
            ds->ntime = seg_total(c);
            ds->time = ts_malloc(ds->ntime * sizeof *ds->time);
            size_t s = 0;
            for (size_t t = 0; t < ds->ntime; t++) ds->time[t] = seg_time(ds, c, t, &s);
        } else if (match_times(ds, ref, c)) {
            return -1;
        }
    }
    if (!ref)
        return TS_FAIL(ds->err, ds->errcap, "%s: no time-varying channel among data.variables and data.forcings",
                       ds->file[0].path);
    return 0;
}
