/* QG restart files: the full model state and every parameter, NetCDF-4,
 * written to path.part and renamed, so a partial file never has the final
 * name. Layout (docs/sim.md):
 *
 *   dimensions: channel = 2 (north, south), layer = 2 (upper, lower),
 *               mode_y = ny, wavenumber_x = nx/2 + 1, re_im = 2,
 *               latitude = nlat, longitude = nlon
 *   double pv(channel, layer, mode_y, wavenumber_x, re_im)   PV anomaly, s^-1
 *   double humidity(channel, mode_y, wavenumber_x, re_im)    850 hPa specific humidity, kg kg^-1
 *   double slab_diurnal(latitude, longitude), slab_seasonal(latitude, longitude)   K
 *   double latitude(latitude), longitude(longitude)          the output grid
 *   global: format = "tessera-qg-restart", format_version = 1, time (int64
 *   unix seconds), step (int64), valid_time (ISO text), history, and one
 *   attribute qg_<name> per ts_qg_params field.
 * Spectral coefficients are stored as the model holds them (sim/qg_internal.h),
 * so a restart continues bit for bit.
 */
#include "sim/qg_internal.h"

#include <errno.h>
#include <netcdf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/log.h"
#include "io/io_error.h"

#define RESTART_FORMAT "tessera-qg-restart"
#define RESTART_VERSION 1

typedef enum { P_SIZE, P_INT, P_DOUBLE, P_BACKGROUND } ptype;

typedef struct {
    const char *name;
    size_t offset;
    ptype type;
} param_field;

#define PF(field, type) {#field, offsetof(ts_qg_params, field), type}
static const param_field PARAMS[] = {
    PF(nlat, P_SIZE), PF(nlon, P_SIZE), PF(nx, P_SIZE), PF(ny, P_SIZE), PF(dt, P_INT),
    PF(radius, P_DOUBLE), PF(omega, P_DOUBLE), PF(lat0, P_DOUBLE), PF(deform_radius, P_DOUBLE),
    PF(p_upper, P_DOUBLE), PF(p_lower, P_DOUBLE), PF(t_eq_surface, P_DOUBLE), PF(t_eq_exponent, P_DOUBLE),
    PF(phi_1000, P_DOUBLE), PF(background, P_BACKGROUND), PF(bg_u1, P_DOUBLE), PF(bg_u2, P_DOUBLE),
    PF(mid_lo, P_DOUBLE), PF(mid_hi, P_DOUBLE), PF(polar_lo, P_DOUBLE), PF(dT_mid, P_DOUBLE), PF(dT_mid_season, P_DOUBLE), PF(dT_polar, P_DOUBLE),
    PF(dT_polar_season, P_DOUBLE), PF(tau_rad, P_DOUBLE), PF(land_heating, P_DOUBLE),
    PF(diurnal_heating, P_DOUBLE), PF(tau_ekman, P_DOUBLE), PF(tau_hyper, P_DOUBLE), PF(topo_depth, P_DOUBLE),
    PF(rh_source, P_DOUBLE), PF(rh_condense, P_DOUBLE), PF(tau_evap_sea, P_DOUBLE), PF(tau_evap_land, P_DOUBLE),
    PF(tau_condense, P_DOUBLE), PF(slab_absorb, P_DOUBLE), PF(slab_capacity, P_DOUBLE), PF(slab_tau, P_DOUBLE),
    PF(season_gain, P_DOUBLE), PF(season_tau, P_DOUBLE), PF(sea_diurnal, P_DOUBLE), PF(lapse_rate, P_DOUBLE),
};
#undef PF
enum { NPARAMS = sizeof PARAMS / sizeof PARAMS[0] };

/* ---- save ---------------------------------------------------------------------------- */

static int put_params(int nc, const ts_qg_params *p, const char *path, char *err, size_t errcap) {
    for (size_t i = 0; i < NPARAMS; i++) {
        char name[64];
        snprintf(name, sizeof name, "qg_%s", PARAMS[i].name);
        const char *field = (const char *)p + PARAMS[i].offset;
        switch (PARAMS[i].type) {
        case P_SIZE: {
            long long v = (long long)*(const size_t *)field;
            TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, name, NC_INT64, 1, &v), err, errcap, "%s", path);
            break;
        }
        case P_INT:
            TS_NC_CHECK_GOTO(nc_put_att_int(nc, NC_GLOBAL, name, NC_INT, 1, (const int *)field), err, errcap, "%s", path);
            break;
        case P_BACKGROUND: {
            int v = (int)*(const ts_qg_background *)field;
            TS_NC_CHECK_GOTO(nc_put_att_int(nc, NC_GLOBAL, name, NC_INT, 1, &v), err, errcap, "%s", path);
            break;
        }
        case P_DOUBLE:
            TS_NC_CHECK_GOTO(nc_put_att_double(nc, NC_GLOBAL, name, NC_DOUBLE, 1, (const double *)field), err, errcap, "%s", path);
            break;
        }
    }
    return 0;
fail:
    return -1;
}

typedef struct {
    int pv, hum, slab_d, slab_e, lat, lon;
} restart_vars;

static int define_restart(int nc, const ts_qg *m, const char *history, restart_vars *v, const char *path, char *err,
                          size_t errcap) {
    int d_ch, d_ly, d_my, d_kx, d_ri, d_lat, d_lon;
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "channel", 2, &d_ch), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "layer", 2, &d_ly), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "mode_y", m->p.ny, &d_my), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "wavenumber_x", m->nk, &d_kx), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "re_im", 2, &d_ri), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "latitude", m->p.nlat, &d_lat), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_dim(nc, "longitude", m->p.nlon, &d_lon), err, errcap, "%s", path);
    int pv_dims[5] = {d_ch, d_ly, d_my, d_kx, d_ri}, hum_dims[4] = {d_ch, d_my, d_kx, d_ri}, grid[2] = {d_lat, d_lon};
    TS_NC_CHECK_GOTO(nc_def_var(nc, "pv", NC_DOUBLE, 5, pv_dims, &v->pv), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_var(nc, "humidity", NC_DOUBLE, 4, hum_dims, &v->hum), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_var(nc, "slab_diurnal", NC_DOUBLE, 2, grid, &v->slab_d), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_var(nc, "slab_seasonal", NC_DOUBLE, 2, grid, &v->slab_e), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_var(nc, "latitude", NC_DOUBLE, 1, &d_lat, &v->lat), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_def_var(nc, "longitude", NC_DOUBLE, 1, &d_lon, &v->lon), err, errcap, "%s", path);
    static const char pv_doc[] = "potential-vorticity anomaly, spectral (sim/qg_internal.h storage)";
    static const char hum_doc[] = "specific humidity at 850 hPa, spectral (cosine in y)";
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->pv, "long_name", strlen(pv_doc), pv_doc), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->pv, "units", 3, "s-1"), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->hum, "long_name", strlen(hum_doc), hum_doc), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->hum, "units", 7, "kg kg-1"), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->slab_d, "units", 1, "K"), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->slab_e, "units", 1, "K"), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->lat, "units", 13, "degrees_north"), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, v->lon, "units", 12, "degrees_east"), err, errcap, "%s", path);

    TS_NC_CHECK_GOTO(nc_put_att_text(nc, NC_GLOBAL, "format", strlen(RESTART_FORMAT), RESTART_FORMAT), err, errcap, "%s", path);
    int version = RESTART_VERSION;
    TS_NC_CHECK_GOTO(nc_put_att_int(nc, NC_GLOBAL, "format_version", NC_INT, 1, &version), err, errcap, "%s", path);
    long long t = m->time, step = m->step;
    TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, "time", NC_INT64, 1, &t), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_att_longlong(nc, NC_GLOBAL, "step", NC_INT64, 1, &step), err, errcap, "%s", path);
    char iso[64];
    ts_format_datetime(m->time, iso, sizeof iso);
    TS_NC_CHECK_GOTO(nc_put_att_text(nc, NC_GLOBAL, "valid_time", strlen(iso), iso), err, errcap, "%s", path);
    if (history) TS_NC_CHECK_GOTO(nc_put_att_text(nc, NC_GLOBAL, "history", strlen(history), history), err, errcap, "%s", path);
    if (put_params(nc, &m->p, path, err, errcap)) return -1;
    TS_NC_CHECK_GOTO(nc_enddef(nc), err, errcap, "%s", path);
    return 0;
fail:
    return -1;
}

/* The state in file order: pv (channel, layer, ...) and humidity (channel, ...). */
static void pack_state(const ts_qg *m, double *pv, double *hum) {
    size_t ns = m->ns;
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 2; l++)
            memcpy(pv + ((size_t)h * 2 + (size_t)l) * 2 * ns, m->state + ((size_t)h * QG_NFIELD + (size_t)l) * ns,
                   ns * sizeof(cplx));
        memcpy(hum + (size_t)h * 2 * ns, m->state + ((size_t)h * QG_NFIELD + 2) * ns, ns * sizeof(cplx));
    }
}

static void unpack_state(ts_qg *m, const double *pv, const double *hum) {
    size_t ns = m->ns;
    for (int h = 0; h < 2; h++) {
        for (int l = 0; l < 2; l++)
            memcpy(m->state + ((size_t)h * QG_NFIELD + (size_t)l) * ns, pv + ((size_t)h * 2 + (size_t)l) * 2 * ns,
                   ns * sizeof(cplx));
        memcpy(m->state + ((size_t)h * QG_NFIELD + 2) * ns, hum + (size_t)h * 2 * ns, ns * sizeof(cplx));
    }
}

int ts_qg_save(const ts_qg *m, const char *final_path, const char *history, char *err, size_t errcap) {
    size_t n = strlen(final_path) + sizeof ".part";
    char *path = ts_malloc(n);
    snprintf(path, n, "%s.part", final_path);
    double *pv = ts_malloc(8 * m->ns * sizeof *pv);  /* (2, 2, ny, nk, 2) */
    double *hum = ts_malloc(4 * m->ns * sizeof *hum); /* (2, ny, nk, 2) */
    pack_state(m, pv, hum);
    int nc = -1;
    restart_vars v;
    TS_NC_CHECK_GOTO(nc_create(path, NC_NETCDF4 | NC_CLOBBER, &nc), err, errcap, "%s", path);
    if (define_restart(nc, m, history, &v, path, err, errcap)) goto fail;
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.pv, pv), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.hum, hum), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.slab_d, m->slab_d), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.slab_e, m->slab_e), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.lat, m->lat), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_put_var_double(nc, v.lon, m->lon), err, errcap, "%s", path);
    int rc = nc_close(nc);
    nc = -1;
    if (rc != NC_NOERR) {
        ts_nc_fail_at(err, errcap, rc, "nc_close", __FILE__, __LINE__, "%s", path);
        goto fail;
    }
    if (rename(path, final_path) != 0) {
        TS_FAIL(err, errcap, "%s: rename to %s: %s", path, final_path, strerror(errno));
        goto fail;
    }
    free(pv), free(hum), free(path);
    return 0;
fail:
    if (nc >= 0) nc_close(nc); /* already failing: the first error is the one reported */
    unlink(path);
    free(pv), free(hum), free(path);
    return -1;
}

/* ---- load ---------------------------------------------------------------------------- */

static int get_params(int nc, ts_qg_params *p, const char *path, char *err, size_t errcap) {
    memset(p, 0, sizeof *p);
    for (size_t i = 0; i < NPARAMS; i++) {
        char name[64];
        snprintf(name, sizeof name, "qg_%s", PARAMS[i].name);
        char *field = (char *)p + PARAMS[i].offset;
        switch (PARAMS[i].type) {
        case P_SIZE: {
            long long v;
            TS_NC_CHECK_GOTO(nc_get_att_longlong(nc, NC_GLOBAL, name, &v), err, errcap, "%s", path);
            if (v < 0) {
                return TS_FAIL(err, errcap, "%s: attribute %s is negative (%lld)", path, name, v);
            }
            *(size_t *)field = (size_t)v;
            break;
        }
        case P_INT:
            TS_NC_CHECK_GOTO(nc_get_att_int(nc, NC_GLOBAL, name, (int *)field), err, errcap, "%s", path);
            break;
        case P_BACKGROUND: {
            int v;
            TS_NC_CHECK_GOTO(nc_get_att_int(nc, NC_GLOBAL, name, &v), err, errcap, "%s", path);
            *(ts_qg_background *)field = (ts_qg_background)v;
            break;
        }
        case P_DOUBLE:
            TS_NC_CHECK_GOTO(nc_get_att_double(nc, NC_GLOBAL, name, (double *)field), err, errcap, "%s", path);
            break;
        }
    }
    return 0;
fail:
    return -1;
}

static int check_format(int nc, const char *path, char *err, size_t errcap) {
    char fmt[64] = {0};
    size_t len = 0;
    int version = 0;
    TS_NC_CHECK_GOTO(nc_inq_attlen(nc, NC_GLOBAL, "format", &len), err, errcap, "%s", path);
    if (len >= sizeof fmt) len = sizeof fmt - 1;
    TS_NC_CHECK_GOTO(nc_get_att_text(nc, NC_GLOBAL, "format", fmt), err, errcap, "%s", path);
    fmt[len] = '\0';
    TS_NC_CHECK_GOTO(nc_get_att_int(nc, NC_GLOBAL, "format_version", &version), err, errcap, "%s", path);
    if (strcmp(fmt, RESTART_FORMAT) != 0 || version != RESTART_VERSION) {
        return TS_FAIL(err, errcap, "%s: not a %s file of version %d (format '%s', version %d)", path, RESTART_FORMAT,
                 RESTART_VERSION, fmt, version);
    }
    return 0;
fail:
    return -1;
}

/* The file's dimension `name` must have `want` entries. */
static int check_dim(int nc, const char *name, size_t want, const char *path, char *err, size_t errcap) {
    int id;
    size_t len;
    TS_NC_CHECK_GOTO(nc_inq_dimid(nc, name, &id), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_inq_dimlen(nc, id, &len), err, errcap, "%s", path);
    if (len != want) {
        return TS_FAIL(err, errcap, "%s: dimension %s has %zu entries, its parameters say %zu", path, name, len, want);
    }
    return 0;
fail:
    return -1;
}

static int read_state(int nc, ts_qg *m, const char *path, char *err, size_t errcap) {
    int id;
    long long t, step;
    double *pv = ts_malloc(8 * m->ns * sizeof *pv);  /* (2, 2, ny, nk, 2) */
    double *hum = ts_malloc(4 * m->ns * sizeof *hum); /* (2, ny, nk, 2) */
    if (check_dim(nc, "mode_y", m->p.ny, path, err, errcap) || check_dim(nc, "wavenumber_x", m->nk, path, err, errcap) ||
        check_dim(nc, "latitude", m->p.nlat, path, err, errcap) ||
        check_dim(nc, "longitude", m->p.nlon, path, err, errcap))
        goto fail;
    TS_NC_CHECK_GOTO(nc_inq_varid(nc, "pv", &id), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_var_double(nc, id, pv), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_inq_varid(nc, "humidity", &id), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_var_double(nc, id, hum), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_inq_varid(nc, "slab_diurnal", &id), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_var_double(nc, id, m->slab_d), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_inq_varid(nc, "slab_seasonal", &id), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_var_double(nc, id, m->slab_e), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_att_longlong(nc, NC_GLOBAL, "time", &t), err, errcap, "%s", path);
    TS_NC_CHECK_GOTO(nc_get_att_longlong(nc, NC_GLOBAL, "step", &step), err, errcap, "%s", path);
    if (t % m->p.dt) {
        snprintf(err, errcap, "%s: time %lld is not a multiple of the %d s step", path, t, m->p.dt);
        goto fail;
    }
    unpack_state(m, pv, hum);
    m->time = t, m->step = step;
    free(pv), free(hum);
    return ts_qg_check_finite(m) ? (snprintf(err, errcap, "%s: the state holds NaN or infinite values", path), -1) : 0;
fail:
    free(pv), free(hum);
    return -1;
}

ts_qg *ts_qg_load(const char *path, char *err, size_t errcap) {
    int nc = -1;
    ts_qg *m = NULL;
    ts_qg_params p;
    char why[512];
    TS_NC_CHECK_GOTO(nc_open(path, NC_NOWRITE, &nc), err, errcap, "%s", path);
    if (check_format(nc, path, err, errcap) || get_params(nc, &p, path, err, errcap)) goto fail;
    m = ts_qg_create(&p, why, sizeof why);
    if (!m) {
        snprintf(err, errcap, "%s: its parameters do not make a model: %s", path, why);
        goto fail;
    }
    if (read_state(nc, m, path, err, errcap)) goto fail;
    int rc = nc_close(nc);
    nc = -1;
    if (rc != NC_NOERR) {
        ts_nc_fail_at(err, errcap, rc, "nc_close", __FILE__, __LINE__, "%s", path);
        goto fail;
    }
    return m;
fail:
    if (nc >= 0) nc_close(nc);
    ts_qg_free(m);
    return NULL;
}
