/* The QG model's dynamics: spectral transforms, PV inversion, the
 * tendency of the PV anomaly and the humidity, and the integrating-factor
 * RK4 step. The equations are in docs/sim.md. */
#include "sim/qg_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"

/* ---- parameters ------------------------------------------------------------------ */

int ts_qg_params_default(ts_qg_params *p, size_t nlat, size_t nlon) {
    memset(p, 0, sizeof *p);
    p->nlat = nlat, p->nlon = nlon;
    if (nlat == 32 && nlon == 64) {
        p->nx = 64, p->ny = 24, p->dt = 1800;
    } else if (nlat == 128 && nlon == 256) {
        p->nx = 128, p->ny = 48, p->dt = 900;
    } else {
        return -1;
    }
    p->radius = 6.371e6;
    p->omega = 7.292e-5;
    p->lat0 = 45.0;
    p->deform_radius = 6.0e5;
    p->p_upper = 300.0;
    p->p_lower = 1000.0;
    p->t_eq_surface = 300.0;
    p->t_eq_exponent = 0.163; /* T_eq: 292 K at 850 hPa, 268 K at 500 hPa (tropical soundings) */
    p->phi_1000 = 1079.0;     /* 110 m: the 1000 hPa surface under a 1013 hPa sea-level pressure */
    p->background = TS_QG_BG_SEASONAL;
    p->mid_lo = 10.0, p->mid_hi = 65.0, p->polar_lo = 50.0;
    p->dT_mid = 24.0;
    p->dT_mid_season = 4.0;
    p->dT_polar = 8.0;
    p->dT_polar_season = 9.0;
    p->tau_rad = 25.0 * 86400;
    p->land_heating = 6.0;
    p->diurnal_heating = 1.5e-8; /* 15 % of the insolation anomaly into a 10 t m^-2 column */
    p->tau_ekman = 4.0 * 86400;
    p->tau_hyper = 48.0 * 3600; /* weak: the small scales carry the error growth (docs/sim.md) */
    p->topo_depth = 15000.0; /* QG wants f0 h / H2 well below f0: 4.5 km of plateau gives 0.3 f0 */
    p->rh_source = 0.8;
    p->rh_condense = 0.95;
    p->tau_evap_sea = 2.0 * 86400;
    p->tau_evap_land = 6.0 * 86400;
    p->tau_condense = 3.0 * 3600;
    p->slab_absorb = 0.3;
    p->slab_capacity = 5.0e5;
    p->slab_tau = 86400.0;
    p->season_gain = 0.05;
    p->season_tau = 30.0 * 86400;
    p->sea_diurnal = 0.1;
    p->lapse_rate = 6.5e-3;
    return 0;
}

static int check_params(const ts_qg_params *p, char *err, size_t errcap) {
    if (p->nlat < 2 || p->nlat % 2 || p->nlon < 4 || p->nlon % 2)
        return TS_FAIL(err, errcap, "qg: output grid %zu x %zu must have an even number (>= 2) of rows and columns", p->nlat, p->nlon);
    if (p->nx < 8 || p->nx % 2 || p->nx > 764 || p->ny < 6 || p->ny % 2)
        return TS_FAIL(err, errcap, "qg: model grid %zu x %zu out of range (nx even in [8, 764], ny even >= 6)", p->nx, p->ny);
    if (p->dt <= 0 || 3600 % p->dt) return TS_FAIL(err, errcap, "qg: time step %d s must divide 3600", p->dt);
    if (!(p->radius > 0 && p->omega > 0 && p->lat0 > 0 && p->lat0 < 90 && p->deform_radius > 0))
        return TS_FAIL(err, errcap, "qg: radius, omega, deform_radius must be positive and lat0 in (0, 90)");
    if (!(p->p_upper > 0 && p->p_lower > p->p_upper)) return TS_FAIL(err, errcap, "qg: need 0 < p_upper < p_lower");
    if (!(p->mid_lo >= 0 && p->mid_hi > p->mid_lo && p->mid_hi <= 90 && p->polar_lo >= 0 && p->polar_lo < 90))
        return TS_FAIL(err, errcap, "qg: need 0 <= mid_lo < mid_hi <= 90 and 0 <= polar_lo < 90");
    if (p->background < TS_QG_BG_SEASONAL || p->background > TS_QG_BG_NONE) return TS_FAIL(err, errcap, "qg: unknown background %d", (int)p->background);
    if (p->tau_rad < 0 || p->tau_ekman < 0 || p->tau_hyper < 0 || p->topo_depth < 0 || p->tau_evap_sea <= 0 ||
        p->tau_evap_land <= 0 || p->tau_condense <= 0 || p->slab_tau <= 0 || p->season_tau <= 0 ||
        p->slab_capacity <= 0)
        return TS_FAIL(err, errcap, "qg: time scales and depths must be >= 0 (relaxations > 0)");
    return 0;
}

/* ---- transforms ------------------------------------------------------------------ */

int qg_batch_make(ts_qg *m, qg_batch *b, int basis, int dir, size_t nf, char *err, size_t errcap) {
    size_t ny = m->p.ny, nx = m->p.nx, nk = m->nk;
    memset(b, 0, sizeof *b);
    b->nf = nf, b->basis = basis, b->dir = dir;
    b->spec = fftw_malloc(nf * ny * nk * sizeof *b->spec);
    b->mid = fftw_malloc(nf * ny * nk * sizeof *b->mid);
    b->grid = fftw_malloc(nf * ny * nx * sizeof *b->grid);
    if (!b->spec || !b->mid || !b->grid)
        return TS_FAIL(err, errcap, "qg: fftw_malloc of %zu fields failed", nf);
    memset(b->spec, 0, nf * ny * nk * sizeof *b->spec);
    memset(b->mid, 0, nf * ny * nk * sizeof *b->mid);
    memset(b->grid, 0, nf * ny * nx * sizeof *b->grid);
    int n = (int)nx;
    if (dir == QG_INVERSE)
        b->x_plan = fftw_plan_many_dft_c2r(1, &n, (int)(nf * ny), b->mid, NULL, 1, (int)nk, b->grid, NULL, 1,
                                           (int)nx, FFTW_ESTIMATE);
    else
        b->x_plan = fftw_plan_many_dft_r2c(1, &n, (int)(nf * ny), b->grid, NULL, 1, (int)nx, b->mid, NULL, 1,
                                           (int)nk, FFTW_ESTIMATE);
    if (!b->x_plan)
        return TS_FAIL(err, errcap, "qg: FFTW could not plan the %zu-field %s transform of %zu x %zu", nf, dir == QG_INVERSE ? "inverse" : "forward", ny, nx);
    return 0;
}

void qg_batch_free(qg_batch *b) {
    if (b->x_plan) fftw_destroy_plan(b->x_plan);
    fftw_free(b->spec);
    fftw_free(b->mid);
    fftw_free(b->grid);
    memset(b, 0, sizeof *b);
}

/* The y bases are symmetric about the channel centre: basis(ny-1-j, r) =
 * (-1)^r basis(j, r) for both sines and cosines (ny even). Each transform
 * therefore sums even and odd modes once for the pair of rows j, ny-1-j:
 * half the multiplications of a plain matrix product. Rows hold ncol reals
 * (re and im of k = 0..kmax) at stride ld; the rest of a row is zeroed so
 * the c2r and the truncation see exact zeros. */
enum { MAXCOL = 512 }; /* 2 (kmax + 1): check_params keeps nx <= 764 */

/* out (ny rows) <- A (ny, nmode) x in (nmode rows) */
static void y_inverse(const double *A, size_t ny, size_t nmode, const double *in, double *out, size_t ncol, size_t ld) {
    for (size_t j = 0; j < ny / 2; j++) {
        double even[MAXCOL], odd[MAXCOL];
        for (size_t c = 0; c < ncol; c++) even[c] = odd[c] = 0.0;
        for (size_t r = 0; r < nmode; r++) {
            double w = A[j * nmode + r], *acc = (r % 2) ? odd : even;
            const double *x = in + r * ld;
            for (size_t c = 0; c < ncol; c++) acc[c] += w * x[c];
        }
        double *top = out + j * ld, *bottom = out + (ny - 1 - j) * ld;
        for (size_t c = 0; c < ncol; c++) {
            top[c] = even[c] + odd[c];
            bottom[c] = even[c] - odd[c];
        }
        memset(top + ncol, 0, (ld - ncol) * sizeof *top);
        memset(bottom + ncol, 0, (ld - ncol) * sizeof *bottom);
    }
}

/* out (nmode rows) <- A (nmode, ny) x in (ny rows); rows nmode..ny-1 zeroed */
static void y_forward(const double *A, size_t ny, size_t nmode, const double *in, double *out, size_t ncol, size_t ld) {
    double sum[MAXCOL], dif[MAXCOL];
    for (size_t r = 0; r < ny; r++) memset(out + r * ld, 0, ld * sizeof *out);
    for (size_t j = 0; j < ny / 2; j++) {
        const double *top = in + j * ld, *bottom = in + (ny - 1 - j) * ld;
        for (size_t c = 0; c < ncol; c++) {
            sum[c] = top[c] + bottom[c];
            dif[c] = top[c] - bottom[c];
        }
        for (size_t r = 0; r < nmode; r++) {
            double w = A[r * ny + j], *o = out + r * ld;
            const double *x = (r % 2) ? dif : sum;
            for (size_t c = 0; c < ncol; c++) o[c] += w * x[c];
        }
    }
}

void qg_execute(const ts_qg *m, qg_batch *b) {
    size_t ny = m->p.ny, ld = 2 * m->nk, ncol = 2 * (m->kmax + 1), nf = b->nf;
    size_t nmode = b->basis == QG_S ? m->mmax : m->mmax + 1;
    if (b->dir == QG_INVERSE) {
        const double *A = b->basis == QG_S ? m->yinv_s : m->yinv_c;
        for (size_t f = 0; f < nf; f++)
            y_inverse(A, ny, nmode, (const double *)(b->spec + f * ny * m->nk), (double *)(b->mid + f * ny * m->nk),
                      ncol, ld);
        fftw_execute(b->x_plan);
    } else {
        const double *A = b->basis == QG_S ? m->yfwd_s : m->yfwd_c;
        fftw_execute(b->x_plan);
        for (size_t f = 0; f < nf; f++)
            y_forward(A, ny, nmode, (const double *)(b->mid + f * ny * m->nk), (double *)(b->spec + f * ny * m->nk),
                      ncol, ld);
    }
}

void qg_forward_into(ts_qg *m, qg_batch *b, cplx *out) {
    qg_execute(m, b);
    const double *keep = b->basis == QG_S ? m->keep_s : m->keep_c;
    for (size_t f = 0; f < b->nf; f++)
        for (size_t i = 0; i < m->ns; i++) out[f * m->ns + i] = b->spec[f * m->ns + i] * keep[i];
}

/* Mean over the channel of f^2 (Parseval in the storage above). */
double qg_mean_square(const ts_qg *m, const cplx *x, int basis) {
    double s = 0.0;
    for (size_t r = 0; r < m->p.ny; r++) {
        double wy = (basis == QG_C && r == 0) ? 1.0 : 2.0;
        for (size_t k = 0; k < m->nk; k++) {
            double wx = k == 0 ? 1.0 : 2.0;
            cplx v = x[r * m->nk + k];
            s += wy * wx * (k == 0 ? creal(v) * creal(v) : creal(v) * creal(v) + cimag(v) * cimag(v));
        }
    }
    return s;
}

/* ---- PV inversion and tendency --------------------------------------------------- */

void qg_invert(const ts_qg *m, const cplx *q1, const cplx *q2, cplx *psi1, cplx *psi2) {
    for (size_t i = 0; i < m->ns; i++) {
        cplx a = q1[i], b = q2[i];
        psi1[i] = m->inv11[i] * a + m->inv12[i] * b;
        psi2[i] = m->inv21[i] * a + m->inv22[i] * b;
    }
}

/* Spectral derivatives of one channel into the inverse batches' slots. */
static void fill_inverse(ts_qg *m, int h, const cplx *q1, const cplx *q2, const cplx *c, const cplx *psi1,
                         const cplx *psi2) {
    size_t nk = m->nk, ns = m->ns;
    cplx *S = m->inv_s.spec + (size_t)h * NIS * ns, *C = m->inv_c.spec + (size_t)h * NIC * ns;
    memset(S, 0, NIS * ns * sizeof *S);
    memset(C, 0, NIC * ns * sizeof *C);
    for (size_t r = 0; r < m->mmax; r++) { /* S rows: mode r + 1 */
        double l = m->ly[r + 1];
        for (size_t k = 0; k <= m->kmax; k++) {
            size_t i = r * nk + k, ic = (r + 1) * nk + k;
            cplx ik = I * m->kx[k];
            S[IS_V1 * ns + i] = ik * psi1[i];
            S[IS_V2 * ns + i] = ik * psi2[i];
            S[IS_Q1X * ns + i] = ik * q1[i];
            S[IS_Q2X * ns + i] = ik * q2[i];
            S[IS_TH * ns + i] = psi1[i] - psi2[i];
            C[IC_P1Y * ns + ic] = l * psi1[i];
            C[IC_P2Y * ns + ic] = l * psi2[i];
            C[IC_Q1Y * ns + ic] = l * q1[i];
            C[IC_Q2Y * ns + ic] = l * q2[i];
        }
    }
    for (size_t r = 0; r <= m->mmax; r++) /* C rows: mode r */
        for (size_t k = 0; k <= m->kmax; k++) {
            size_t i = r * nk + k;
            C[IC_CX * ns + i] = I * m->kx[k] * c[i];
            C[IC_C * ns + i] = c[i];
            if (r > 0) S[IS_CY * ns + (r - 1) * nk + k] = -m->ly[r] * c[i];
        }
}

/* Saturation specific humidity at 850 hPa from a table (0.1 K steps,
 * linear interpolation: relative error below 1e-5), clamped to its range. */
static double qsat850(const ts_qg *m, double t) {
    double x = (t - QG_QSAT_T0) / QG_QSAT_DT;
    if (x < 0) x = 0;
    if (x > QG_QSAT_N - 2) x = QG_QSAT_N - 2;
    size_t i = (size_t)x;
    double w = x - (double)i;
    return m->qsat850[i] + w * (m->qsat850[i + 1] - m->qsat850[i]);
}

/* Grid-point products of one channel: the Jacobians (advection of the
 * total PV by the total flow) and the humidity tendency. */
static void grid_products(ts_qg *m, int h) {
    size_t nx = m->p.nx, ny = m->p.ny, ng = m->ng;
    const double *S = m->inv_s.grid + (size_t)h * NIS * ng, *C = m->inv_c.grid + (size_t)h * NIC * ng;
    double *J1 = m->fwd_s.grid + (size_t)h * 2 * ng, *J2 = J1 + ng, *dc = m->fwd_c.grid + (size_t)h * ng;
    const double *tx = m->topo_x + (size_t)h * ng, *ty = m->topo_y + (size_t)h * ng;
    const double *evap = m->evap_rate + (size_t)h * ng;
    const double t850 = qg_t_eq(m, 850.0), w = m->w850, inv_g = 1.0 / m->G;
    const double rh_src = m->p.rh_source, rh_cond = m->p.rh_condense, cond_rate = 1.0 / m->p.tau_condense;
    for (size_t j = 0; j < ny; j++) {
        const qg_basic *b = &m->basic[(size_t)h * ny + j];
        double theta_e = b->psi1 - b->psi2;
        for (size_t i = j * nx; i < (j + 1) * nx; i++) {
            double u1 = b->u1 - C[IC_P1Y * ng + i], v1 = S[IS_V1 * ng + i];
            double u2 = b->u2 - C[IC_P2Y * ng + i], v2 = S[IS_V2 * ng + i];
            J1[i] = u1 * S[IS_Q1X * ng + i] + v1 * (C[IC_Q1Y * ng + i] + b->q1y);
            J2[i] = u2 * (S[IS_Q2X * ng + i] + tx[i]) + v2 * (C[IC_Q2Y * ng + i] + b->q2y + ty[i]);
            /* humidity: advected by the 850 hPa wind, evaporation toward
             * rh_source, condensation above rh_condense */
            double uq = u2 + w * (u1 - u2), vq = v2 + w * (v1 - v2);
            double qs = qsat850(m, t850 + (theta_e + S[IS_TH * ng + i]) * inv_g);
            double c = C[IC_C * ng + i], src = 0.0;
            if (c < rh_src * qs) src = (rh_src * qs - c) * evap[i];
            if (c > rh_cond * qs) src = -(c - rh_cond * qs) * cond_rate;
            dc[i] = -(uq * C[IC_CX * ng + i] + vq * S[IS_CY * ng + i]) + src;
        }
    }
}

/* Linear spectral terms: Newtonian cooling toward the equilibrium
 * thickness (its land-sea part), diurnal heating, Ekman friction. */
static void linear_terms(ts_qg *m, int h, const cplx *psi1, const cplx *psi2, cplx *d1, cplx *d2) {
    const double F = m->F;
    const double relax = m->p.tau_rad > 0 ? 1.0 / m->p.tau_rad : 0.0;
    const double ekman = m->p.tau_ekman > 0 ? 1.0 / m->p.tau_ekman : 0.0;
    const cplx *asym = m->asym + (size_t)h * m->ns, *heat = m->heat + (size_t)h * m->ns;
    const double season = m->season[h];
    for (size_t i = 0; i < m->ns; i++) {
        if (m->keep_s[i] == 0.0) continue;
        /* d theta/dt = -(theta - theta_target)/tau + heating; q1 holds -F theta, q2 +F theta */
        cplx dtheta = -(psi1[i] - psi2[i] - season * asym[i]) * relax + heat[i];
        d1[i] += -F * dtheta;
        d2[i] += F * dtheta + ekman * m->k2s[i] * psi2[i];
    }
}

/* out = N(u): everything but the hyperdiffusion (which the integrating
 * factor takes exactly). */
static void tendency(ts_qg *m, const cplx *u, cplx *out) {
    size_t ns = m->ns;
    for (int h = 0; h < 2; h++) {
        const cplx *q1 = u + (size_t)h * QG_NFIELD * ns, *q2 = q1 + ns, *c = q2 + ns;
        cplx *psi1 = m->psi + (size_t)h * 2 * ns, *psi2 = psi1 + ns;
        qg_invert(m, q1, q2, psi1, psi2);
        fill_inverse(m, h, q1, q2, c, psi1, psi2);
    }
    qg_execute(m, &m->inv_s);
    qg_execute(m, &m->inv_c);
    for (int h = 0; h < 2; h++) grid_products(m, h);
    qg_execute(m, &m->fwd_s);
    qg_execute(m, &m->fwd_c);
    for (int h = 0; h < 2; h++) {
        cplx *d1 = out + (size_t)h * QG_NFIELD * ns, *d2 = d1 + ns, *dc = d2 + ns;
        const cplx *J1 = m->fwd_s.spec + (size_t)h * 2 * ns, *J2 = J1 + ns, *C = m->fwd_c.spec + (size_t)h * ns;
        for (size_t i = 0; i < ns; i++) {
            d1[i] = -J1[i] * m->keep_s[i];
            d2[i] = -J2[i] * m->keep_s[i];
            dc[i] = C[i] * m->keep_c[i];
        }
        const cplx *psi1 = m->psi + (size_t)h * 2 * ns;
        linear_terms(m, h, psi1, psi1 + ns, d1, d2);
    }
}

/* ---- time stepping --------------------------------------------------------------- */

/* Integrating-factor RK4 (Cox & Matthews 2002, their IFRK4) with the
 * hyperdiffusion exp(L dt) exact and the forcing frozen at mid-step. */
static void ifrk4(ts_qg *m) {
    const size_t n = m->nstate;
    const double dt = m->p.dt, h2 = 0.5 * dt;
    cplx *u = m->state, *a = m->ka, *b = m->kb, *c = m->kc, *d = m->kd, *t = m->tmp;
    const double *E = m->E, *E2 = m->E2;
    tendency(m, u, a);
    for (size_t i = 0; i < n; i++) t[i] = E2[i] * (u[i] + h2 * a[i]);
    tendency(m, t, b);
    for (size_t i = 0; i < n; i++) t[i] = E2[i] * u[i] + h2 * b[i];
    tendency(m, t, c);
    for (size_t i = 0; i < n; i++) t[i] = E[i] * u[i] + dt * E2[i] * c[i];
    tendency(m, t, d);
    for (size_t i = 0; i < n; i++) u[i] = E[i] * u[i] + dt / 6.0 * (E[i] * a[i] + 2.0 * E2[i] * (b[i] + c[i]) + d[i]);
}

void ts_qg_step(ts_qg *m) {
    double t_mid = (double)m->time + 0.5 * m->p.dt;
    qg_update_forcing(m, t_mid);
    ifrk4(m);
    qg_slab_step(m, t_mid);
    m->step++;
    m->time += m->p.dt;
}

void ts_qg_run_until(ts_qg *m, int64_t t) {
    if (t < m->time || (t - m->time) % m->p.dt)
        ts_fatal("qg: cannot run from %lld to %lld in steps of %d s", (long long)m->time, (long long)t, m->p.dt);
    while (m->time < t) ts_qg_step(m);
}

int64_t ts_qg_time(const ts_qg *m) { return m->time; }

int ts_qg_check_finite(const ts_qg *m) {
    for (size_t i = 0; i < m->nstate; i++)
        if (!isfinite(creal(m->state[i])) || !isfinite(cimag(m->state[i]))) return -1;
    for (size_t i = 0; i < m->p.nlat * m->p.nlon; i++)
        if (!isfinite(m->slab_d[i]) || !isfinite(m->slab_e[i])) return -1;
    return 0;
}

/* ---- set-up ------------------------------------------------------------------------ */

static void setup_wavenumbers(ts_qg *m) {
    size_t ny = m->p.ny, nk = m->nk;
    for (size_t k = 0; k < nk; k++) m->kx[k] = 2.0 * QG_PI * (double)k / m->Lx;
    for (size_t r = 0; r <= ny; r++) m->ly[r] = QG_PI * (double)r / m->Ly;
    double norm = 1.0 / (2.0 * (double)m->p.nx * (double)ny);
    for (size_t r = 0; r < ny; r++)
        for (size_t k = 0; k < nk; k++) {
            size_t i = r * nk + k;
            double K2 = m->kx[k] * m->kx[k] + m->ly[r + 1] * m->ly[r + 1];
            double det = K2 * (K2 + 2.0 * m->F); /* of [[-K2-F, F], [F, -K2-F]] */
            m->k2s[i] = K2;
            m->inv11[i] = -(K2 + m->F) / det;
            m->inv12[i] = -m->F / det;
            m->inv21[i] = -m->F / det;
            m->inv22[i] = -(K2 + m->F) / det;
            m->keep_s[i] = (k <= m->kmax && r + 1 <= m->mmax) ? norm : 0.0;
            m->keep_c[i] = (k <= m->kmax && r <= m->mmax) ? norm : 0.0;
        }
}

/* The y transforms as matrices (see qg_internal.h). */
static void setup_y_matrices(ts_qg *m) {
    size_t ny = m->p.ny, ms = m->mmax, mc = m->mmax + 1;
    for (size_t j = 0; j < ny; j++) {
        double yj = ((double)j + 0.5) / (double)ny;
        for (size_t r = 0; r < ms; r++) {
            double v = 2.0 * sin(QG_PI * (double)(r + 1) * yj);
            m->yinv_s[j * ms + r] = v;
            m->yfwd_s[r * ny + j] = v;
        }
        for (size_t r = 0; r < mc; r++) {
            double c = cos(QG_PI * (double)r * yj);
            m->yinv_c[j * mc + r] = (r == 0 ? 1.0 : 2.0) * c;
            m->yfwd_c[r * ny + j] = 2.0 * c;
        }
    }
}

/* exp(-(K/Kmax)^8 dt / tau_hyper) for every state value. */
static void setup_hyperdiffusion(ts_qg *m) {
    double kmax2 = m->kx[m->kmax] * m->kx[m->kmax] + m->ly[m->mmax] * m->ly[m->mmax];
    double rate0 = m->p.tau_hyper > 0 ? 1.0 / m->p.tau_hyper : 0.0;
    for (int h = 0; h < 2; h++)
        for (int f = 0; f < QG_NFIELD; f++)
            for (size_t r = 0; r < m->p.ny; r++)
                for (size_t k = 0; k < m->nk; k++) {
                    double l = f < 2 ? m->ly[r + 1] : m->ly[r];
                    double x = (m->kx[k] * m->kx[k] + l * l) / kmax2;
                    double rate = rate0 * x * x * x * x;
                    size_t i = ((size_t)(h * QG_NFIELD + f)) * m->ns + r * m->nk + k;
                    m->E[i] = exp(-rate * m->p.dt);
                    m->E2[i] = exp(-rate * 0.5 * m->p.dt);
                }
}

static void *qg_alloc(size_t n, size_t size) { return ts_calloc(n ? n : 1, size); }

static void allocate(ts_qg *m) {
    size_t ny = m->p.ny, nout = m->p.nlat * m->p.nlon;
    m->kx = qg_alloc(m->nk, sizeof(double));
    m->ly = qg_alloc(ny + 1, sizeof(double));
    m->inv11 = qg_alloc(m->ns, sizeof(double));
    m->inv12 = qg_alloc(m->ns, sizeof(double));
    m->inv21 = qg_alloc(m->ns, sizeof(double));
    m->inv22 = qg_alloc(m->ns, sizeof(double));
    m->k2s = qg_alloc(m->ns, sizeof(double));
    m->keep_s = qg_alloc(m->ns, sizeof(double));
    m->keep_c = qg_alloc(m->ns, sizeof(double));
    m->E = qg_alloc(m->nstate, sizeof(double));
    m->E2 = qg_alloc(m->nstate, sizeof(double));
    m->qsat850 = qg_alloc(QG_QSAT_N, sizeof(double));
    m->yinv_s = qg_alloc(ny * m->mmax, sizeof(double));
    m->yinv_c = qg_alloc(ny * (m->mmax + 1), sizeof(double));
    m->yfwd_s = qg_alloc(m->mmax * ny, sizeof(double));
    m->yfwd_c = qg_alloc((m->mmax + 1) * ny, sizeof(double));
    m->state = qg_alloc(m->nstate, sizeof(cplx));
    m->ka = qg_alloc(m->nstate, sizeof(cplx));
    m->kb = qg_alloc(m->nstate, sizeof(cplx));
    m->kc = qg_alloc(m->nstate, sizeof(cplx));
    m->kd = qg_alloc(m->nstate, sizeof(cplx));
    m->tmp = qg_alloc(m->nstate, sizeof(cplx));
    m->psi = qg_alloc(4 * m->ns, sizeof(cplx));
    m->slab_d = qg_alloc(nout, sizeof(double));
    m->slab_e = qg_alloc(nout, sizeof(double));
    m->basic = qg_alloc(2 * ny, sizeof(qg_basic));
    m->heat = qg_alloc(2 * m->ns, sizeof(cplx));
    m->asym = qg_alloc(2 * m->ns, sizeof(cplx));
    m->topo_x = qg_alloc(2 * m->ng, sizeof(double));
    m->topo_y = qg_alloc(2 * m->ng, sizeof(double));
    m->evap_rate = qg_alloc(2 * m->ng, sizeof(double));
    m->taper = qg_alloc(ny, sizeof(double));
    m->row_lat = qg_alloc(ny, sizeof(double));
    m->lon_model = qg_alloc(m->p.nx, sizeof(double));
    m->cos_lon_model = qg_alloc(m->p.nx, sizeof(double));
    m->sin_lon_model = qg_alloc(m->p.nx, sizeof(double));
    m->cos_lon = qg_alloc(m->p.nlon, sizeof(double));
    m->sin_lon = qg_alloc(m->p.nlon, sizeof(double));
    m->lat = qg_alloc(m->p.nlat, sizeof(double));
    m->lon = qg_alloc(m->p.nlon, sizeof(double));
    m->lsm = qg_alloc(nout, sizeof(double));
    m->height = qg_alloc(nout, sizeof(double));
    m->insol_ann = qg_alloc(m->p.nlat, sizeof(double));
}

ts_qg *ts_qg_create(const ts_qg_params *p, char *err, size_t errcap) {
    if (check_params(p, err, errcap)) return NULL;
    ts_qg *m = ts_calloc(1, sizeof *m);
    m->p = *p;
    double phi0 = p->lat0 * QG_DEG;
    m->f0 = 2.0 * p->omega * sin(phi0);
    m->beta = 2.0 * p->omega * cos(phi0) / p->radius;
    m->F = 1.0 / (2.0 * p->deform_radius * p->deform_radius);
    m->Lx = 2.0 * QG_PI * p->radius * cos(phi0);
    m->Ly = 0.5 * QG_PI * p->radius;
    m->G = QG_R_DRY * log(p->p_lower / p->p_upper) / m->f0;
    m->w850 = log(p->p_lower / 850.0) / log(p->p_lower / p->p_upper);
    m->nk = p->nx / 2 + 1;
    m->kmax = (p->nx - 1) / 3;       /* 2/3 rule: k1 + k2 aliases onto nx - k1 - k2 > kmax */
    m->mmax = (2 * p->ny - 1) / 3;   /* mode 2 ny - m aliases onto m: need 2 ny - 2 mmax > mmax */
    m->ns = p->ny * m->nk;
    m->ng = p->ny * p->nx;
    m->nstate = 2 * QG_NFIELD * m->ns;
    allocate(m);
    setup_wavenumbers(m);
    setup_y_matrices(m);
    for (size_t i = 0; i < QG_QSAT_N; i++) m->qsat850[i] = qg_qsat(QG_QSAT_T0 + QG_QSAT_DT * (double)i, 850.0);
    setup_hyperdiffusion(m);
    if (qg_batch_make(m, &m->inv_s, QG_S, QG_INVERSE, 2 * NIS, err, errcap) ||
        qg_batch_make(m, &m->inv_c, QG_C, QG_INVERSE, 2 * NIC, err, errcap) ||
        qg_batch_make(m, &m->fwd_s, QG_S, QG_FORWARD, 4, err, errcap) ||
        qg_batch_make(m, &m->fwd_c, QG_C, QG_FORWARD, 2, err, errcap) ||
        qg_batch_make(m, &m->fwd_2s, QG_S, QG_FORWARD, 2, err, errcap) || qg_setup_static(m, err, errcap) ||
        qg_setup_diag(m, err, errcap)) {
        ts_qg_free(m);
        return NULL;
    }
    return m;
}

void ts_qg_free(ts_qg *m) {
    if (!m) return;
    qg_batch_free(&m->inv_s);
    qg_batch_free(&m->inv_c);
    qg_batch_free(&m->fwd_s);
    qg_batch_free(&m->fwd_c);
    qg_batch_free(&m->fwd_2s);
    if (m->diag_plan) fftw_destroy_plan(m->diag_plan);
    fftw_free(m->diag_spec);
    fftw_free(m->diag_grid);
    void *bufs[] = {m->kx, m->ly, m->inv11, m->inv12, m->inv21, m->inv22, m->k2s, m->keep_s, m->keep_c,
                    m->E, m->E2, m->qsat850, m->yinv_s, m->yinv_c, m->yfwd_s, m->yfwd_c, m->state, m->ka, m->kb, m->kc, m->kd, m->tmp, m->psi, m->slab_d,
                    m->slab_e, m->basic, m->heat, m->asym, m->topo_x, m->topo_y, m->evap_rate, m->taper,
                    m->row_lat, m->lon_model, m->cos_lon_model, m->sin_lon_model, m->cos_lon, m->sin_lon, m->lat, m->lon, m->lsm, m->height, m->insol_ann,
                    m->basis_s, m->basis_c};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(m);
}

const ts_qg_params *ts_qg_get_params(const ts_qg *m) { return &m->p; }
const double *ts_qg_lat(const ts_qg *m) { return m->lat; }
const double *ts_qg_lon(const ts_qg *m) { return m->lon; }

/* ---- initial state and perturbations ------------------------------------------- */

/* Stream of the initial anomaly and of ensemble perturbations: distinct
 * ranges of the TS_RNG_PERTURBATION family. */
#define INIT_STREAM (UINT64_C(1) << 40)

/* Random coefficients (standard normal re and im; k = 0 real) inside the
 * truncation, limited to k <= kcap and modes <= mcap. */
static void random_modes(const ts_qg *m, ts_rng_key key, uint64_t stream, size_t kcap, size_t mcap, cplx *out) {
    size_t nk = m->nk;
    float *z = ts_malloc(2 * m->ns * sizeof *z); /* (ns, 2) */
    ts_rng_normal(key, stream, 0, 2 * m->ns, z);
    memset(out, 0, m->ns * sizeof *out);
    for (size_t r = 0; r < m->mmax && r < mcap; r++)
        for (size_t k = 0; k <= m->kmax && k <= kcap; k++) {
            size_t i = r * nk + k;
            out[i] = z[2 * i] + (k == 0 ? 0.0 : I * z[2 * i + 1]);
        }
    free(z);
}

void ts_qg_init(ts_qg *m, int64_t t0, uint64_t seed) {
    if (t0 % m->p.dt) ts_fatal("qg: initial time %lld is not a multiple of the %d s step", (long long)t0, m->p.dt);
    m->time = t0, m->step = 0;
    memset(m->state, 0, m->nstate * sizeof *m->state);
    ts_rng_key key = ts_rng_key_make(seed, TS_RNG_PERTURBATION);
    cplx *noise = ts_malloc(m->ns * sizeof *noise); /* (ns) */
    /* A weak large-scale PV anomaly (winds of a few tenths of m/s): the
     * seed of the baroclinic instability, which grows to its saturated
     * eddies within about three weeks. */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 2; l++) {
            random_modes(m, key, INIT_STREAM + (uint64_t)(2 * h + l), 12, 12, noise);
            cplx *q = m->state + ((size_t)h * QG_NFIELD + (size_t)l) * m->ns;
            for (size_t i = 0; i < m->ns; i++) q[i] = 1.0e-7 * noise[i];
        }
    free(noise);
    qg_update_forcing(m, (double)t0);
    /* humidity: rh_source of saturation at the equilibrium 850 hPa temperature */
    for (int h = 0; h < 2; h++)
        for (size_t j = 0; j < m->p.ny; j++) {
            const qg_basic *b = &m->basic[(size_t)h * m->p.ny + j];
            double t850 = qg_t_eq(m, 850.0) + (b->psi1 - b->psi2) / m->G;
            double c = m->p.rh_source * qg_qsat(t850, 850.0);
            for (size_t i = 0; i < m->p.nx; i++) m->fwd_c.grid[(size_t)h * m->ng + j * m->p.nx + i] = c;
        }
    cplx *cs = ts_malloc(2 * m->ns * sizeof *cs); /* (2, ns) humidity spectra */
    qg_forward_into(m, &m->fwd_c, cs);
    for (int h = 0; h < 2; h++)
        memcpy(m->state + ((size_t)h * QG_NFIELD + 2) * m->ns, cs + (size_t)h * m->ns, m->ns * sizeof *cs);
    free(cs);
    qg_slab_init(m, (double)t0);
}

void ts_qg_perturb(ts_qg *m, uint64_t seed, uint64_t member, double rel_amp) {
    ts_rng_key key = ts_rng_key_make(seed, TS_RNG_PERTURBATION);
    cplx *noise = ts_malloc(m->ns * sizeof *noise); /* (ns) */
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 2; l++) {
            cplx *q = m->state + ((size_t)h * QG_NFIELD + (size_t)l) * m->ns;
            random_modes(m, key, member * 4 + (uint64_t)(2 * h + l), m->kmax, m->mmax, noise);
            double rms_q = sqrt(qg_mean_square(m, q, QG_S)), rms_n = sqrt(qg_mean_square(m, noise, QG_S));
            double scale = rms_n > 0 ? rel_amp * rms_q / rms_n : 0.0;
            for (size_t i = 0; i < m->ns; i++) q[i] += scale * noise[i];
        }
    free(noise);
}

/* ---- measurements --------------------------------------------------------------- */

double ts_qg_energy(const ts_qg *m) {
    double e = 0.0;
    cplx *psi = ts_malloc(2 * m->ns * sizeof *psi); /* (2 layers, ns) */
    cplx *th = ts_malloc(m->ns * sizeof *th);       /* (ns) psi1 - psi2 */
    for (int h = 0; h < 2; h++) {
        const cplx *q1 = m->state + (size_t)h * QG_NFIELD * m->ns;
        qg_invert(m, q1, q1 + m->ns, psi, psi + m->ns);
        double grad = 0.0;
        for (int l = 0; l < 2; l++)
            for (size_t i = 0; i < m->ns; i++) {
                cplx v = psi[(size_t)l * m->ns + i];
                size_t k = i % m->nk;
                double w = (k == 0 ? 1.0 : 2.0) * 2.0;
                grad += w * m->k2s[i] * (k == 0 ? creal(v) * creal(v) : creal(v * conj(v)));
            }
        for (size_t i = 0; i < m->ns; i++) th[i] = psi[i] - psi[m->ns + i];
        e += 0.5 * (grad + m->F * qg_mean_square(m, th, QG_S));
    }
    free(psi), free(th);
    return 0.5 * e; /* mean of the two channels */
}

double ts_qg_pv_rms(const ts_qg *m) {
    double s = 0.0;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 2; l++) s += qg_mean_square(m, m->state + ((size_t)h * QG_NFIELD + (size_t)l) * m->ns, QG_S);
    return sqrt(s / 4.0);
}

double ts_qg_pv_distance(const ts_qg *a, const ts_qg *b) {
    if (a->nstate != b->nstate) ts_fatal("qg: comparing models of different sizes");
    cplx *d = ts_malloc(a->ns * sizeof *d); /* (ns) */
    double s = 0.0;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 2; l++) {
            size_t off = ((size_t)h * QG_NFIELD + (size_t)l) * a->ns;
            for (size_t i = 0; i < a->ns; i++) d[i] = a->state[off + i] - b->state[off + i];
            s += qg_mean_square(a, d, QG_S);
        }
    free(d);
    return sqrt(s / 4.0);
}

int ts_qg_state_equal(const ts_qg *a, const ts_qg *b) {
    size_t nout = a->p.nlat * a->p.nlon;
    return a->nstate == b->nstate && nout == b->p.nlat * b->p.nlon && a->time == b->time && a->step == b->step &&
           memcmp(a->state, b->state, a->nstate * sizeof *a->state) == 0 &&
           memcmp(a->slab_d, b->slab_d, nout * sizeof *a->slab_d) == 0 &&
           memcmp(a->slab_e, b->slab_e, nout * sizeof *a->slab_e) == 0;
}

void ts_qg_truncation(const ts_qg *m, size_t *kmax, size_t *mmax) {
    *kmax = m->kmax;
    *mmax = m->mmax;
}

/* Physical amplitude A of Re(A e^{ikx}) sin(m pi y/Ly) from the stored X:
 * A = 2 X (y) times 2 for k > 0 (the conjugate pair). */
static double mode_factor(size_t k) { return k == 0 ? 2.0 : 4.0; }

static size_t mode_index(const ts_qg *m, int h, int field, size_t k, size_t mode) {
    if (h < 0 || h > 1 || field < 0 || field > 1 || k > m->kmax || mode < 1 || mode > m->mmax)
        ts_fatal("qg: no mode (hemisphere %d, layer %d, k %zu, m %zu) inside the truncation", h, field, k, mode);
    return ((size_t)h * QG_NFIELD + (size_t)field) * m->ns + (mode - 1) * m->nk + k;
}

cplx ts_qg_get_pv_mode(const ts_qg *m, int h, int layer, size_t k, size_t mode) {
    return mode_factor(k) * m->state[mode_index(m, h, layer, k, mode)];
}

void ts_qg_set_pv_mode(ts_qg *m, int h, int layer, size_t k, size_t mode, cplx value) {
    if (k == 0) value = creal(value); /* a real field has a real zonal mean */
    m->state[mode_index(m, h, layer, k, mode)] = value / mode_factor(k);
}

cplx ts_qg_get_psi_mode(const ts_qg *m, int h, int layer, size_t k, size_t mode) {
    size_t i1 = mode_index(m, h, 0, k, mode), i2 = mode_index(m, h, 1, k, mode);
    size_t i = (mode - 1) * m->nk + k;
    cplx q1 = m->state[i1], q2 = m->state[i2];
    cplx psi = layer == 0 ? m->inv11[i] * q1 + m->inv12[i] * q2 : m->inv21[i] * q1 + m->inv22[i] * q2;
    return mode_factor(k) * psi;
}

void ts_qg_clear(ts_qg *m) { memset(m->state, 0, m->nstate * sizeof *m->state); }

void ts_qg_constants(const ts_qg *m, double *f0, double *beta, double *F, double *Lx, double *Ly) {
    if (f0) *f0 = m->f0;
    if (beta) *beta = m->beta;
    if (F) *F = m->F;
    if (Lx) *Lx = m->Lx;
    if (Ly) *Ly = m->Ly;
}
