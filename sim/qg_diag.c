/* Diagnostics of the QG model on the output grid: the spectral fields are
 * evaluated exactly at the output latitudes (a sum over the y modes) and
 * longitudes (an inverse FFT of the output's length), then turned into
 * ERA5 variables. The north channel fills the rows with latitude > 0, the
 * south channel, a mirror image (y -> -y, v -> -v), the rest. */
#include "sim/qg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* Fields evaluated on the output grid, per channel. */
enum { D_P1, D_P2, D_P1Y, D_P2Y, D_P1X, D_P2X, D_HUM, NDIAG };
static const int DIAG_BASIS[NDIAG] = {QG_S, QG_S, QG_C, QG_C, QG_S, QG_S, QG_C};

int qg_setup_diag(ts_qg *m, char *err, size_t errcap) {
    size_t nlat = m->p.nlat, nlon = m->p.nlon, nb = m->mmax + 1, nko = nlon / 2 + 1;
    m->ndiag = NDIAG;
    m->basis_s = ts_calloc(nlat * nb, sizeof *m->basis_s);
    m->basis_c = ts_calloc(nlat * nb, sizeof *m->basis_c);
    for (size_t i = 0; i < nlat; i++) {
        double yfrac = fabs(m->lat[i]) / 90.0; /* y / Ly in the row's own channel */
        for (size_t r = 0; r < nb; r++) {
            m->basis_s[i * nb + r] = r < m->mmax ? 2.0 * sin(QG_PI * (double)(r + 1) * yfrac) : 0.0;
            m->basis_c[i * nb + r] = (r == 0 ? 1.0 : 2.0) * cos(QG_PI * (double)r * yfrac);
        }
    }
    m->diag_spec = fftw_malloc(NDIAG * nlat * nko * sizeof *m->diag_spec);
    m->diag_grid = fftw_malloc(NDIAG * nlat * nlon * sizeof *m->diag_grid);
    if (!m->diag_spec || !m->diag_grid) {
        return TS_FAIL(err, errcap, "qg: fftw_malloc of the diagnostics failed");
    }
    int n = (int)nlon;
    m->diag_plan = fftw_plan_many_dft_c2r(1, &n, (int)(NDIAG * nlat), m->diag_spec, NULL, 1, (int)nko,
                                          m->diag_grid, NULL, 1, (int)nlon, FFTW_ESTIMATE);
    if (!m->diag_plan) {
        return TS_FAIL(err, errcap, "qg: FFTW could not plan the %zu-point diagnostic transform", nlon);
    }
    return 0;
}

/* Spectra of the diagnosed fields of one channel: (NDIAG, ns). */
static void channel_spectra(const ts_qg *m, int h, cplx *out) {
    size_t ns = m->ns, nk = m->nk;
    const cplx *q1 = m->state + (size_t)h * QG_NFIELD * ns, *q2 = q1 + ns, *c = q2 + ns;
    memset(out, 0, NDIAG * ns * sizeof *out);
    qg_invert(m, q1, q2, out + D_P1 * ns, out + D_P2 * ns);
    for (size_t r = 0; r < m->mmax; r++)
        for (size_t k = 0; k <= m->kmax; k++) {
            size_t i = r * nk + k, ic = (r + 1) * nk + k;
            out[D_P1Y * ns + ic] = m->ly[r + 1] * out[D_P1 * ns + i];
            out[D_P2Y * ns + ic] = m->ly[r + 1] * out[D_P2 * ns + i];
            out[D_P1X * ns + i] = I * m->kx[k] * out[D_P1 * ns + i];
            out[D_P2X * ns + i] = I * m->kx[k] * out[D_P2 * ns + i];
        }
    memcpy(out + D_HUM * ns, c, ns * sizeof *c);
}

/* m->diag_grid (NDIAG, nlat, nlon) <- the anomaly fields at the output points. */
static void evaluate_on_output(ts_qg *m) {
    size_t nlat = m->p.nlat, nlon = m->p.nlon, nko = nlon / 2 + 1, nb = m->mmax + 1, ns = m->ns, nk = m->nk;
    size_t kcap = m->kmax < nlon / 2 ? m->kmax : nlon / 2 - 1; /* the output's Nyquist stays empty */
    cplx *spec = ts_malloc(2 * NDIAG * ns * sizeof *spec); /* (2, NDIAG, ns) */
    for (int h = 0; h < 2; h++) channel_spectra(m, h, spec + (size_t)h * NDIAG * ns);
    memset(m->diag_spec, 0, NDIAG * nlat * nko * sizeof *m->diag_spec);
    for (size_t f = 0; f < NDIAG; f++)
        for (size_t i = 0; i < nlat; i++) {
            int h = i < nlat / 2 ? 0 : 1;
            const double *basis = (DIAG_BASIS[f] == QG_S ? m->basis_s : m->basis_c) + i * nb;
            const cplx *x = spec + ((size_t)h * NDIAG + f) * ns;
            cplx *out = m->diag_spec + (f * nlat + i) * nko;
            for (size_t r = 0; r < nb; r++) {
                if (basis[r] == 0.0) continue;
                for (size_t k = 0; k <= kcap; k++) out[k] += basis[r] * x[r * nk + k];
            }
        }
    fftw_execute(m->diag_plan);
    free(spec);
}

void ts_qg_fields_alloc(ts_qg_fields *f, size_t nlat, size_t nlon, const double *levels, size_t nlev) {
    size_t n2 = nlat * nlon, n3 = (nlev ? nlev : 1) * n2;
    memset(f, 0, sizeof *f);
    f->nlat = nlat, f->nlon = nlon, f->nlev = nlev;
    f->levels = ts_calloc(nlev ? nlev : 1, sizeof *f->levels);
    if (nlev) memcpy(f->levels, levels, nlev * sizeof *levels);
    float **three[] = {&f->z, &f->t, &f->u, &f->v, &f->q};
    float **two[] = {&f->t2m, &f->u10, &f->v10, &f->msl, &f->tisr, &f->lsm, &f->zsfc};
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++) *three[i] = ts_calloc(n3, sizeof(float));
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++) *two[i] = ts_calloc(n2, sizeof(float));
}

void ts_qg_fields_free(ts_qg_fields *f) {
    void *bufs[] = {f->levels, f->z, f->t, f->u, f->v, f->q, f->t2m, f->u10, f->v10, f->msl, f->tisr, f->lsm, f->zsfc};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(f, 0, sizeof *f);
}

/* Per-level constants of the vertical structure. */
typedef struct {
    double p, w, phi_ref, t_eq;
} level_consts;

static level_consts level_at(const ts_qg *m, double p) {
    level_consts l = {p, log(m->p.p_lower / p) / log(m->p.p_lower / m->p.p_upper), qg_phi_ref(m, p), qg_t_eq(m, p)};
    return l;
}

/* The total (basic + anomaly) two-layer state at one output point, in the
 * physical frame (v already mirrored in the south). */
typedef struct {
    double psi1, psi2, u1, u2, v1, v2, hum;
} column;

static column column_at(const ts_qg *m, const qg_basic *b, size_t g, double vsign) {
    size_t n2 = m->p.nlat * m->p.nlon;
    const double *d = m->diag_grid;
    column c = {b->psi1 + d[D_P1 * n2 + g], b->psi2 + d[D_P2 * n2 + g], b->u1 - d[D_P1Y * n2 + g],
                b->u2 - d[D_P2Y * n2 + g], vsign * d[D_P1X * n2 + g], vsign * d[D_P2X * n2 + g],
                d[D_HUM * n2 + g]};
    return c;
}

static void pressure_levels(const ts_qg *m, const column *c, const level_consts *lv, size_t nlev, size_t g,
                            size_t n2, ts_qg_fields *f) {
    double theta = c->psi1 - c->psi2, tprime = theta / m->G;
    double t850 = qg_t_eq(m, 850.0) + tprime;
    double rh = c->hum / qg_qsat(t850, 850.0);
    rh = rh < 0 ? 0 : rh > 1 ? 1 : rh; /* spectral ringing of the tracer is clipped here, not in the state */
    for (size_t l = 0; l < nlev; l++) {
        double w = lv[l].w, t = lv[l].t_eq + tprime;
        f->z[l * n2 + g] = (float)(lv[l].phi_ref + m->f0 * (c->psi2 + w * theta));
        f->t[l * n2 + g] = (float)t;
        f->u[l * n2 + g] = (float)(c->u2 + w * (c->u1 - c->u2));
        f->v[l * n2 + g] = (float)(c->v2 + w * (c->v1 - c->v2));
        f->q[l * n2 + g] = (float)(rh * qg_qsat(t, lv[l].p));
    }
}

/* Surface variables. 10 m wind: the 1000 hPa geostrophic wind slowed and
 * turned toward low pressure (more over land); the turning is to the left
 * of the flow in the north, to the right in the south. */
static void surface(const ts_qg *m, const column *c, const level_consts *s, size_t g, double vsign, ts_qg_fields *f) {
    const ts_qg_params *p = &m->p;
    double theta = c->psi1 - c->psi2, t1000 = s->t_eq + theta / m->G;
    double z1000 = s->phi_ref + m->f0 * (c->psi2 + s->w * theta);
    double land = m->lsm[g];
    f->msl[g] = (float)(100000.0 * exp(z1000 / (QG_R_DRY * t1000)));
    f->t2m[g] = (float)(t1000 - p->lapse_rate * m->height[g] + (land + p->sea_diurnal * (1.0 - land)) * m->slab_d[g] +
                        land * m->slab_e[g]);
    double us = c->u2 + s->w * (c->u1 - c->u2), vs = c->v2 + s->w * (c->v1 - c->v2);
    double slow = 0.8 * (1.0 - land) + 0.6 * land, turn = vsign * (15.0 * (1.0 - land) + 30.0 * land) * QG_DEG;
    f->u10[g] = (float)(slow * (us * cos(turn) - vs * sin(turn)));
    f->v10[g] = (float)(slow * (us * sin(turn) + vs * cos(turn)));
    f->lsm[g] = (float)land;
    f->zsfc[g] = (float)(QG_GRAVITY * m->height[g]);
}

void ts_qg_diagnose(ts_qg *m, ts_qg_fields *f) {
    size_t nlat = m->p.nlat, nlon = m->p.nlon, n2 = nlat * nlon;
    if (f->nlat != nlat || f->nlon != nlon) ts_fatal("qg: diagnostics of a %zu x %zu grid asked on %zu x %zu", nlat, nlon, f->nlat, f->nlon);
    evaluate_on_output(m);
    qg_sun sun = qg_sun_at((double)m->time);
    double season = qg_season_index(&sun);
    level_consts *lv = ts_malloc((f->nlev ? f->nlev : 1) * sizeof *lv);
    for (size_t l = 0; l < f->nlev; l++) lv[l] = level_at(m, f->levels[l]);
    level_consts s1000 = level_at(m, 1000.0);
    for (size_t i = 0; i < nlat; i++) {
        int south = i >= nlat / 2;
        double vsign = south ? -1.0 : 1.0;
        qg_basic b = qg_basic_at(m, south ? -season : season, fabs(m->lat[i]));
        for (size_t j = 0; j < nlon; j++) {
            size_t g = i * nlon + j;
            column c = column_at(m, &b, g, vsign);
            pressure_levels(m, &c, lv, f->nlev, g, n2, f);
            surface(m, &c, &s1000, g, vsign, f);
        }
    }
    free(lv);
    ts_solar_tisr_field((double)m->time, m->lat, nlat, m->lon, nlon, f->tisr);
}
