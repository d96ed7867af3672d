/* What drives the QG model: the sun (core/solar.h), the seasonal basic
 * state it sets, the diurnal heating, the invented land and orography, and
 * the surface slab under t2m. */
#include "sim/qg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sim/earth.h"

/* ---- the sun ----------------------------------------------------------------------- */

/* One ts_sun_at per call; the hour angle as core/solar.c defines it:
 * (UTC hours - 12) * 15 degrees + longitude + equation of time. */
qg_sun qg_sun_at(double t) {
    ts_sun s = ts_sun_at(t);
    double utc_hours = fmod(t / 3600.0, 24.0);
    if (utc_hours < 0) utc_hours += 24.0;
    double h0 = (utc_hours - 12.0) * 15.0 * QG_DEG + s.eot;
    qg_sun q = {sin(s.declination), cos(s.declination), s.irradiance, cos(h0), sin(h0)};
    return q;
}

/* Instantaneous TOA flux, W m^-2 (0 at night): irradiance * max(cos zenith, 0). */
double qg_toa(const qg_sun *s, double sin_lat, double cos_lat, double cos_lon, double sin_lon) {
    double cos_h = s->cos_h0 * cos_lon - s->sin_h0 * sin_lon; /* cos(h0 + lon) */
    double mu = sin_lat * s->sin_dec + cos_lat * s->cos_dec * cos_h;
    return mu > 0 ? s->irradiance * mu : 0.0;
}

/* Daily-mean TOA insolation at a latitude for the sun's current
 * declination and distance, W m^-2. */
double qg_daily_insolation(const qg_sun *s, double lat_deg) {
    double sl = sin(lat_deg * QG_DEG), cl = cos(lat_deg * QG_DEG);
    double a = sl * s->sin_dec, b = cl * s->cos_dec;
    double hs; /* sunset hour angle */
    if (b <= 0 || a >= b) hs = a > 0 ? QG_PI : 0.0; /* pole, or sun up all day */
    else if (a <= -b) hs = 0.0;                      /* polar night */
    else hs = acos(-a / b);
    return s->irradiance / QG_PI * (hs * a + b * sin(hs));
}

double qg_season_index(const qg_sun *s) { return s->sin_dec / sin(QG_OBLIQUITY * QG_DEG); }

double ts_qg_toa_flux(const ts_qg *m, double t, size_t ilat, size_t ilon) {
    qg_sun s = qg_sun_at(t);
    double la = m->lat[ilat] * QG_DEG;
    return qg_toa(&s, sin(la), cos(la), m->cos_lon[ilon], m->sin_lon[ilon]);
}

/* ---- reference profiles --------------------------------------------------------- */

double qg_t_eq(const ts_qg *m, double p) { return m->p.t_eq_surface * pow(p / 1000.0, m->p.t_eq_exponent); }

/* Hydrostatic geopotential of T_eq from 1000 hPa up to p. */
double qg_phi_ref(const ts_qg *m, double p) {
    double kappa = m->p.t_eq_exponent;
    return m->p.phi_1000 + QG_R_DRY * m->p.t_eq_surface / kappa * (1.0 - pow(p / 1000.0, kappa));
}

/* Saturation specific humidity over water (Bolton 1980 vapour pressure). */
double qg_qsat(double t, double p_hpa) {
    double es = 611.2 * exp(17.67 * (t - 273.15) / (t - 29.65)); /* Pa */
    double p = p_hpa * 100.0;
    if (es > 0.5 * p) es = 0.5 * p; /* far outside the model's range; keeps q finite */
    return 0.622 * es / (p - 0.378 * es);
}

/* ---- basic state ----------------------------------------------------------------- */

/* A smooth step from 0 (latitude <= lo) to 1 (>= hi), 3x^2 - 2x^3, and its
 * first and third derivatives per radian. */
typedef struct {
    double s, d1, d3;
} step3;

static step3 smooth_step(double lat_deg, double lo, double hi) {
    step3 r = {0, 0, 0};
    double w = (hi - lo) * QG_DEG, x = (lat_deg - lo) / (hi - lo);
    if (x <= 0) return r;
    if (x >= 1) return r.s = 1, r;
    r.s = x * x * (3 - 2 * x);
    r.d1 = 6 * x * (1 - x) / w;
    r.d3 = -12 / (w * w * w);
    return r;
}

/* The zonal equilibrium of a channel at |latitude| for a season index.
 * Seasonal: layer-mean temperature T_eq(p) - A S_mid - B S_polar (sim/qg.h),
 * all of it in the upper layer's streamfunction (thermal wind), the lower
 * layer at rest so the 1000 hPa surface is flat. */
qg_basic qg_basic_at(const ts_qg *m, double season, double lat_abs_deg) {
    qg_basic b = {0};
    double a = m->p.radius, y = a * lat_abs_deg * QG_DEG, F = m->F;
    switch (m->p.background) {
    case TS_QG_BG_SEASONAL: {
        double A = m->p.dT_mid - m->p.dT_mid_season * season, B = m->p.dT_polar - m->p.dT_polar_season * season;
        step3 mid = smooth_step(lat_abs_deg, m->p.mid_lo, m->p.mid_hi), pol = smooth_step(lat_abs_deg, m->p.polar_lo, 90.0);
        b.psi1 = -m->G * (A * mid.s + B * pol.s);
        b.u1 = m->G * (A * mid.d1 + B * pol.d1) / a; /* -d psi1/dy */
        double u1yy = m->G * (A * mid.d3 + B * pol.d3) / (a * a * a);
        b.q1y = m->beta - u1yy + F * b.u1;
        b.q2y = m->beta - F * b.u1;
        break;
    }
    case TS_QG_BG_UNIFORM:
        b.u1 = m->p.bg_u1, b.u2 = m->p.bg_u2;
        b.psi1 = -b.u1 * y, b.psi2 = -b.u2 * y;
        b.q1y = m->beta + F * (b.u1 - b.u2);
        b.q2y = m->beta - F * (b.u1 - b.u2);
        break;
    case TS_QG_BG_NONE:
        b.q1y = b.q2y = m->beta;
        break;
    }
    return b;
}

/* Diurnal heating of the thickness on the model grid, tapered to zero at
 * the walls (where the anomaly cannot hold it), into m->heat. */
static void diurnal_heating(ts_qg *m, const qg_sun *s) {
    size_t nx = m->p.nx, ny = m->p.ny;
    for (int h = 0; h < 2; h++)
        for (size_t j = 0; j < ny; j++) {
            double lat = (h == 0 ? 1 : -1) * m->row_lat[j];
            double sl = sin(lat * QG_DEG), cl = cos(lat * QG_DEG), mean = qg_daily_insolation(s, lat);
            double gain = m->G * m->p.diurnal_heating * m->taper[j];
            double *g = m->fwd_2s.grid + (size_t)h * m->ng + j * nx;
            for (size_t i = 0; i < nx; i++)
                g[i] = gain * (qg_toa(s, sl, cl, m->cos_lon_model[i], m->sin_lon_model[i]) - mean);
        }
    qg_forward_into(m, &m->fwd_2s, m->heat);
}

void qg_update_forcing(ts_qg *m, double t) {
    qg_sun s = qg_sun_at(t);
    double season = qg_season_index(&s);
    m->season[0] = season, m->season[1] = -season;
    for (int h = 0; h < 2; h++)
        for (size_t j = 0; j < m->p.ny; j++)
            m->basic[(size_t)h * m->p.ny + j] = qg_basic_at(m, m->season[h], m->row_lat[j]);
    if (m->p.diurnal_heating != 0.0) diurnal_heating(m, &s);
    else memset(m->heat, 0, 2 * m->ns * sizeof *m->heat);
}

/* ---- static fields ---------------------------------------------------------------- */

/* 1 - (1 - sin(pi y/Ly))^4: zero on the walls, 1 over most of the channel. */
static double wall_taper(double y_frac) {
    double s = 1.0 - sin(QG_PI * y_frac);
    return 1.0 - s * s * s * s;
}

/* Land and height on the model grid (2, ny, nx), north channel first. */
static void model_earth(ts_qg *m, double *land, double *height) {
    size_t nx = m->p.nx, ny = m->p.ny;
    double dlat = 90.0 / (double)ny, dlon = 360.0 / (double)nx;
    double *lat = ts_malloc(ny * sizeof *lat);
    for (int h = 0; h < 2; h++) {
        for (size_t j = 0; j < ny; j++) lat[j] = (h == 0 ? 1 : -1) * m->row_lat[j];
        ts_earth_cells(lat, ny, dlat, m->lon_model, nx, dlon, 4, land + (size_t)h * m->ng,
                       height + (size_t)h * m->ng);
    }
    free(lat);
}

/* The land-sea part of the equilibrium thickness per unit season index:
 * land_heating * (land - its zonal mean), tapered, as S-type spectra. */
static void setup_land_contrast(ts_qg *m, const double *land) {
    size_t nx = m->p.nx;
    for (int h = 0; h < 2; h++)
        for (size_t j = 0; j < m->p.ny; j++) {
            const double *l = land + (size_t)h * m->ng + j * nx;
            double mean = 0.0;
            for (size_t i = 0; i < nx; i++) mean += l[i];
            mean /= (double)nx;
            for (size_t i = 0; i < nx; i++)
                m->fwd_2s.grid[(size_t)h * m->ng + j * nx + i] =
                    m->G * m->p.land_heating * (l[i] - mean) * m->taper[j];
        }
    qg_forward_into(m, &m->fwd_2s, m->asym);
}

/* Gradient of the topographic PV f0 h taper / H2, from its truncated
 * spectrum so the flow sees only scales it resolves. */
static int setup_topography(ts_qg *m, const double *height, char *err, size_t errcap) {
    size_t nx = m->p.nx, ns = m->ns, nk = m->nk;
    if (m->p.topo_depth == 0.0) return 0;
    for (int h = 0; h < 2; h++)
        for (size_t j = 0; j < m->p.ny; j++)
            for (size_t i = 0; i < nx; i++) {
                size_t g = (size_t)h * m->ng + j * nx + i;
                m->fwd_2s.grid[g] = m->f0 * height[g] * m->taper[j] / m->p.topo_depth;
            }
    cplx *spec = ts_malloc(2 * ns * sizeof *spec); /* (2, ns) */
    qg_forward_into(m, &m->fwd_2s, spec);
    qg_batch bs, bc;
    if (qg_batch_make(m, &bs, QG_S, QG_INVERSE, 2, err, errcap) ||
        qg_batch_make(m, &bc, QG_C, QG_INVERSE, 2, err, errcap)) {
        free(spec);
        return -1;
    }
    for (int h = 0; h < 2; h++)
        for (size_t r = 0; r < m->mmax; r++)
            for (size_t k = 0; k <= m->kmax; k++) {
                size_t i = r * nk + k;
                cplx v = spec[(size_t)h * ns + i];
                bs.spec[(size_t)h * ns + i] = I * m->kx[k] * v;                 /* d/dx: S */
                bc.spec[(size_t)h * ns + (r + 1) * nk + k] = m->ly[r + 1] * v; /* d/dy: C */
            }
    qg_execute(m, &bs);
    qg_execute(m, &bc);
    memcpy(m->topo_x, bs.grid, 2 * m->ng * sizeof *m->topo_x);
    memcpy(m->topo_y, bc.grid, 2 * m->ng * sizeof *m->topo_y);
    qg_batch_free(&bs);
    qg_batch_free(&bc);
    free(spec);
    return 0;
}

/* Annual mean of the daily insolation at each output latitude: 365 days
 * of a reference year (2001), so it is the same for every run. */
static void setup_annual_insolation(ts_qg *m) {
    const double t2001 = 978307200.0;
    for (size_t i = 0; i < m->p.nlat; i++) m->insol_ann[i] = 0.0;
    for (int d = 0; d < 365; d++) {
        qg_sun s = qg_sun_at(t2001 + 86400.0 * (d + 0.5));
        for (size_t i = 0; i < m->p.nlat; i++) m->insol_ann[i] += qg_daily_insolation(&s, m->lat[i]) / 365.0;
    }
}

int qg_setup_static(ts_qg *m, char *err, size_t errcap) {
    size_t nx = m->p.nx, ny = m->p.ny, nlat = m->p.nlat, nlon = m->p.nlon;
    for (size_t j = 0; j < ny; j++) {
        m->row_lat[j] = 90.0 * ((double)j + 0.5) / (double)ny;
        m->taper[j] = wall_taper(((double)j + 0.5) / (double)ny);
    }
    for (size_t i = 0; i < nx; i++) {
        m->lon_model[i] = 360.0 * (double)i / (double)nx;
        m->cos_lon_model[i] = cos(m->lon_model[i] * QG_DEG);
        m->sin_lon_model[i] = sin(m->lon_model[i] * QG_DEG);
    }
    for (size_t i = 0; i < nlat; i++) m->lat[i] = 90.0 - 180.0 * ((double)i + 0.5) / (double)nlat;
    for (size_t i = 0; i < nlon; i++) {
        m->lon[i] = 360.0 * (double)i / (double)nlon;
        m->cos_lon[i] = cos(m->lon[i] * QG_DEG);
        m->sin_lon[i] = sin(m->lon[i] * QG_DEG);
    }
    ts_earth_cells(m->lat, nlat, 180.0 / (double)nlat, m->lon, nlon, 360.0 / (double)nlon, 8, m->lsm, m->height);
    setup_annual_insolation(m);

    double *land = ts_malloc(2 * m->ng * sizeof *land), *height = ts_malloc(2 * m->ng * sizeof *height);
    model_earth(m, land, height);
    for (size_t g = 0; g < 2 * m->ng; g++)
        m->evap_rate[g] = land[g] / m->p.tau_evap_land + (1.0 - land[g]) / m->p.tau_evap_sea;
    setup_land_contrast(m, land);
    int rc = setup_topography(m, height, err, errcap);
    free(land), free(height);
    return rc;
}

/* ---- the surface slab under t2m ---------------------------------------------------- */

/* Seasonal land anomaly in equilibrium with today's insolation. */
void qg_slab_init(ts_qg *m, double t) {
    qg_sun s = qg_sun_at(t);
    for (size_t i = 0; i < m->p.nlat; i++) {
        double e = m->p.season_gain * (qg_daily_insolation(&s, m->lat[i]) - m->insol_ann[i]);
        for (size_t j = 0; j < m->p.nlon; j++) {
            m->slab_d[i * m->p.nlon + j] = 0.0;
            m->slab_e[i * m->p.nlon + j] = e;
        }
    }
}

/* Exact exponential integration over one step with the forcing at mid-step:
 *   dD/dt = absorb (S - S_day) / C - D / tau_d      (diurnal cycle)
 *   dE/dt = (gain (S_day - S_annual) - E) / tau_s   (lagged seasonal cycle) */
void qg_slab_step(ts_qg *m, double t_mid) {
    qg_sun s = qg_sun_at(t_mid);
    const ts_qg_params *p = &m->p;
    double ed = exp(-p->dt / p->slab_tau), es = exp(-p->dt / p->season_tau);
    double gain_d = p->slab_tau * (1.0 - ed) * p->slab_absorb / p->slab_capacity;
    for (size_t i = 0; i < p->nlat; i++) {
        double la = m->lat[i] * QG_DEG, sl = sin(la), cl = cos(la);
        double day = qg_daily_insolation(&s, m->lat[i]);
        double e_eq = p->season_gain * (day - m->insol_ann[i]);
        for (size_t j = 0; j < p->nlon; j++) {
            size_t g = i * p->nlon + j;
            double flux = qg_toa(&s, sl, cl, m->cos_lon[j], m->sin_lon[j]);
            m->slab_d[g] = m->slab_d[g] * ed + gain_d * (flux - day);
            m->slab_e[g] = m->slab_e[g] * es + (1.0 - es) * e_eq;
        }
    }
}
