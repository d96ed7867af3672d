/* Tests of the QG reference simulator (sim/qg.h) against independent
 * oracles: the Rossby-wave and Phillips dispersion relations, exact
 * hyperdiffusive decay, energy conservation of the inviscid unforced
 * model, determinism, bit-identical restarts, chaotic error growth, and
 * the insolation against core/solar.h.
 *
 *   test_qg                    the CUnit suite
 *   test_qg --doubling-time    measures the error-doubling time quoted in docs/sim.md
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <CUnit/Basic.h>
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/caltime.h"
#include "core/solar.h"
#include "sim/qg.h"
#include "tests/cunit_run.h"

#define PI 3.14159265358979323846
#define DAY 86400
#define T2020 INT64_C(1577836800) /* 2020-01-01 00 UTC */

static char err[1024];

/* The simulator's 5.625-degree configuration. */
static ts_qg_params simulator_params(void) {
    ts_qg_params p;
    ts_qg_params_default(&p, 32, 64);
    return p;
}

/* Unforced, inviscid, flat: the model reduced to its adiabatic dynamics. */
static ts_qg_params adiabatic_params(ts_qg_background bg) {
    ts_qg_params p = simulator_params();
    p.background = bg;
    p.tau_rad = 0, p.tau_ekman = 0, p.tau_hyper = 0, p.topo_depth = 0;
    p.land_heating = 0, p.diurnal_heating = 0;
    return p;
}

static ts_qg *create_or_fail(const ts_qg_params *p) {
    ts_qg *m = ts_qg_create(p, err, sizeof err);
    if (!m) fprintf(stderr, "\n  ts_qg_create: %s\n", err);
    return m;
}

/* ---- (a) physics oracles ------------------------------------------------------------ */

/* A single mode exp(ikx) sin(m pi y/Ly) with psi2 = +psi1 (barotropic) or
 * -psi1 (baroclinic) is an exact solution of the unforced inviscid
 * equations (its Jacobians vanish) with frequency
 *   omega = -beta k / (K^2 + 2F) (baroclinic),  -beta k / K^2 (barotropic).
 * Two oracles:
 *  - physics: after about two radians of phase the coefficient has turned
 *    by -omega t to 1e-6 of itself (RK4's phase error, (omega dt)^4 / 120
 *    per radian with omega dt < 0.05, is below 1e-7);
 *  - numerics: the scheme applied to this linear mode must give exactly
 *    e^{-nu t} R(-i omega dt)^N, R(z) = 1 + z + z^2/2 + z^3/6 + z^4/24 the
 *    RK4 stability polynomial and e^{-nu t} the hyperdiffusion its
 *    integrating factor takes exactly: to 1e-10 (rounding over ~100 steps). */
static void rossby_mode(int baroclinic, size_t k, size_t mode, double tau_hyper) {
    ts_qg_params p = adiabatic_params(TS_QG_BG_NONE);
    p.tau_hyper = tau_hyper;
    ts_qg *m = create_or_fail(&p);
    CU_ASSERT_FATAL(m != NULL);
    ts_qg_init(m, T2020, 1);
    ts_qg_clear(m);
    double f0, beta, F, Lx, Ly;
    ts_qg_constants(m, &f0, &beta, &F, &Lx, &Ly);
    size_t kmax, mmax;
    ts_qg_truncation(m, &kmax, &mmax);
    double kx = 2 * PI * (double)k / Lx, l = PI * (double)mode / Ly, K2 = kx * kx + l * l;
    double A = 2.0e6, s = baroclinic ? -1.0 : 1.0; /* psi1 = A, psi2 = s A */
    for (int h = 0; h < 2; h++) {
        ts_qg_set_pv_mode(m, h, 0, k, mode, -K2 * A + F * (s * A - A));
        ts_qg_set_pv_mode(m, h, 1, k, mode, -K2 * s * A + F * (A - s * A));
    }
    double omega = -beta * kx / (K2 + (baroclinic ? 2 * F : 0));
    int steps = (int)lround(2.0 / fabs(omega) / p.dt);
    for (int i = 0; i < steps; i++) ts_qg_step(m);
    double t = (double)steps * p.dt;
    double kmax2 = pow(2 * PI * (double)kmax / Lx, 2) + pow(PI * (double)mmax / Ly, 2);
    double decay = tau_hyper > 0 ? exp(-pow(K2 / kmax2, 4) * t / tau_hyper) : 1.0;
    double complex z = -I * omega * p.dt, R = 1 + z + z * z / 2 + z * z * z / 6 + z * z * z * z / 24;
    double complex discrete = decay * cpow(R, steps);
    for (int h = 0; h < 2; h++)
        for (int layer = 0; layer < 2; layer++) {
            double complex r = ts_qg_get_psi_mode(m, h, layer, k, mode) / (layer ? s * A : A);
            double dphase = remainder(carg(r) + omega * t, 2 * PI);
            if (!(fabs(dphase) < 1e-6 * fabs(omega * t) && cabs(r / discrete - 1) < 1e-10))
                fprintf(stderr, "\n  %s k=%zu m=%zu ch %d layer %d: phase error %.3g rad of %.3g, off RK4 by %.3g\n",
                        baroclinic ? "baroclinic" : "barotropic", k, mode, h, layer, dphase, omega * t,
                        cabs(r / discrete - 1));
            CU_ASSERT(fabs(dphase) < 1e-6 * fabs(omega * t));
            CU_ASSERT(cabs(r / discrete - 1) < 1e-10);
        }
    ts_qg_free(m);
}

static void test_rossby_waves(void) {
    rossby_mode(0, 3, 2, 0);
    rossby_mode(0, 1, 1, 0);
    rossby_mode(1, 5, 1, 0);
    rossby_mode(1, 2, 4, 0);
    rossby_mode(1, 9, 7, 6 * 3600.0); /* a mode near the truncation, where the del^8 diffusion bites */
}

/* Phillips' normal modes on uniform layer winds U1, U2: with X = U1 - c,
 * Y = U2 - c, a = K^2 + F and the PV gradients Q1 = beta + F (U1 - U2),
 * Q2 = beta - F (U1 - U2), the phase speed solves
 *   (Q1 - a X)(Q2 - a Y) - F^2 X Y = 0,
 * a quadratic in c. Its growing root must match the growth rate and the
 * phase speed of the model started from a tiny (linear) disturbance, once
 * the decaying root has faded (after 12 days it is down by exp(-2 sigma t),
 * below 1e-3): tolerance 1 %. */
static double complex phillips_c(double U1, double U2, double beta, double F, double K2) {
    double a = K2 + F, Q1 = beta + F * (U1 - U2), Q2 = beta - F * (U1 - U2), g = a * a - F * F;
    double qa = g, qb = -g * (U1 + U2) + a * (Q1 + Q2), qc = g * U1 * U2 - a * (Q1 * U2 + Q2 * U1) + Q1 * Q2;
    double complex root = csqrt(qb * qb - 4 * qa * qc);
    double complex c1 = (-qb + root) / (2 * qa), c2 = (-qb - root) / (2 * qa);
    return cimag(c1) >= cimag(c2) ? c1 : c2;
}

static void test_phillips_instability(void) {
    const double U1 = 15.0, U2 = -5.0;
    const size_t k = 6, mode = 1;
    ts_qg_params p = adiabatic_params(TS_QG_BG_UNIFORM);
    p.bg_u1 = U1, p.bg_u2 = U2;
    ts_qg *m = create_or_fail(&p);
    CU_ASSERT_FATAL(m != NULL);
    ts_qg_init(m, T2020, 1);
    ts_qg_clear(m);
    double f0, beta, F, Lx, Ly;
    ts_qg_constants(m, &f0, &beta, &F, &Lx, &Ly);
    double kx = 2 * PI * (double)k / Lx, l = PI * (double)mode / Ly;
    double complex c = phillips_c(U1, U2, beta, F, kx * kx + l * l);
    double sigma = kx * cimag(c);
    CU_ASSERT_FATAL(sigma * DAY > 0.1); /* the case must be unstable to mean anything */
    for (int h = 0; h < 2; h++) {
        ts_qg_set_pv_mode(m, h, 0, k, mode, 1e-15);
        ts_qg_set_pv_mode(m, h, 1, k, mode, 0.3e-15 * I);
    }
    int steps_per_day = DAY / p.dt;
    ts_qg_run_until(m, T2020 + 12 * DAY);
    double complex z0 = ts_qg_get_psi_mode(m, 0, 0, k, mode), prev = z0;
    double phase = 0.0; /* unwrapped, step by step */
    for (int i = 0; i < 8 * steps_per_day; i++) {
        ts_qg_step(m);
        double complex z = ts_qg_get_psi_mode(m, 0, 0, k, mode);
        phase += carg(z / prev);
        prev = z;
    }
    double t = 8.0 * DAY;
    double sigma_model = log(cabs(prev) / cabs(z0)) / t, c_model = -phase / (kx * t);
    if (fabs(sigma_model / sigma - 1) >= 0.01 || fabs(c_model / creal(c) - 1) >= 0.01)
        fprintf(stderr, "\n  growth %.5f/day (theory %.5f), phase speed %.4f m/s (theory %.4f)\n", sigma_model * DAY,
                sigma * DAY, c_model, creal(c));
    CU_ASSERT(fabs(sigma_model / sigma - 1) < 0.01);
    CU_ASSERT(fabs(c_model / creal(c) - 1) < 0.01);
    double complex s1 = ts_qg_get_psi_mode(m, 1, 0, k, mode); /* the south channel is the same problem */
    CU_ASSERT(cabs(s1 / prev - 1) < 1e-12);
    ts_qg_free(m);
}

/* The unforced, inviscid model conserves 1/2 <|grad psi1|^2 + |grad psi2|^2
 * + F (psi1 - psi2)^2> exactly in space (the 2/3 rule makes the truncated
 * Jacobians a Galerkin projection, and beta terms do no work), so all it
 * loses in 10 days of turbulence is RK4's error, which must shrink at
 * least like dt^4 (16-fold per halving; it is O(dt^5) for a conserved
 * quadratic) and be below 1e-6 of the energy at dt = 900 s. */
static double energy_drift(int dt) {
    ts_qg_params p = adiabatic_params(TS_QG_BG_NONE);
    p.dt = dt;
    ts_qg *m = create_or_fail(&p);
    if (!m) return NAN;
    ts_qg_init(m, T2020, 7);
    ts_qg_perturb(m, 7, 1, 10.0); /* a full spectrum of eddies 10 times the weak initial ones: ~20 m/s */
    double e0 = ts_qg_energy(m);
    ts_qg_run_until(m, T2020 + 10 * DAY);
    double drift = ts_qg_energy(m) / e0 - 1;
    CU_ASSERT(e0 > 100.0); /* m^2 s^-2: the flow is far from rest */
    ts_qg_free(m);
    return drift;
}

static void test_energy_conservation(void) {
    double d1800 = energy_drift(1800), d900 = energy_drift(900);
    if (!(fabs(d900) < 1e-6 && fabs(d1800) > 16 * fabs(d900)))
        fprintf(stderr, "\n  relative energy change: %.3g at dt 1800 s, %.3g at dt 900 s\n", d1800, d900);
    CU_ASSERT(fabs(d900) < 1e-6);
    CU_ASSERT(fabs(d1800) > 16 * fabs(d900));
}

/* The model heats with the same sun as core/solar.h. */
static void test_insolation_matches_core(void) {
    ts_qg_params p = simulator_params();
    ts_qg *m = create_or_fail(&p);
    CU_ASSERT_FATAL(m != NULL);
    const double *lat = ts_qg_lat(m), *lon = ts_qg_lon(m);
    double worst = 0.0;
    for (int d = 0; d < 365; d += 17)
        for (int hr = 0; hr < 24; hr += 5)
            for (size_t i = 0; i < p.nlat; i += 3)
                for (size_t j = 0; j < p.nlon; j += 7) {
                    double t = (double)T2020 + d * 86400.0 + hr * 3600.0 + 1234.0;
                    double diff = fabs(ts_qg_toa_flux(m, t, i, j) - ts_solar_toa_flux(t, lat[i], lon[j]));
                    if (diff > worst) worst = diff;
                }
    CU_ASSERT(worst < 1e-6); /* W m^-2: the same formula, evaluated differently */
    ts_qg_free(m);
}

/* ---- (b) determinism, (c) restarts ---------------------------------------------------- */

static ts_qg *spun_up(uint64_t seed, int days) {
    ts_qg_params p = simulator_params();
    ts_qg *m = create_or_fail(&p);
    if (!m) return NULL;
    ts_qg_init(m, T2020 - (int64_t)days * DAY, seed);
    ts_qg_run_until(m, T2020);
    return m;
}

static void test_determinism(void) {
    ts_qg *a = spun_up(42, 20), *b = spun_up(42, 20), *c = spun_up(43, 20);
    CU_ASSERT_FATAL(a && b && c);
    CU_ASSERT(ts_qg_state_equal(a, b));
    CU_ASSERT(!ts_qg_state_equal(a, c));
    CU_ASSERT(ts_qg_pv_distance(a, c) > 0.01 * ts_qg_pv_rms(a));
    ts_qg_free(a), ts_qg_free(b), ts_qg_free(c);
}

static int fields_equal(const ts_qg_fields *a, const ts_qg_fields *b) {
    size_t n2 = a->nlat * a->nlon, n3 = a->nlev * n2;
    return !memcmp(a->z, b->z, n3 * 4) && !memcmp(a->t, b->t, n3 * 4) && !memcmp(a->u, b->u, n3 * 4) &&
           !memcmp(a->v, b->v, n3 * 4) && !memcmp(a->q, b->q, n3 * 4) && !memcmp(a->t2m, b->t2m, n2 * 4) &&
           !memcmp(a->u10, b->u10, n2 * 4) && !memcmp(a->v10, b->v10, n2 * 4) && !memcmp(a->msl, b->msl, n2 * 4) &&
           !memcmp(a->tisr, b->tisr, n2 * 4);
}

static void test_restart_bit_identical(void) {
    char path[] = "/tmp/tessera_qg_restart_XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    ts_qg *a = spun_up(5, 10);
    CU_ASSERT_FATAL(a != NULL);
    CU_ASSERT_FATAL(ts_qg_save(a, path, "test", err, sizeof err) == 0);
    ts_qg_run_until(a, T2020 + 7 * DAY + 6 * 3600);
    ts_qg *b = ts_qg_load(path, err, sizeof err);
    if (!b) fprintf(stderr, "\n  %s\n", err);
    CU_ASSERT_FATAL(b != NULL);
    CU_ASSERT(ts_qg_time(b) == T2020);
    ts_qg_run_until(b, T2020 + 7 * DAY + 6 * 3600);
    CU_ASSERT(ts_qg_state_equal(a, b));
    double levels[3] = {850, 700, 500};
    ts_qg_fields fa, fb;
    ts_qg_fields_alloc(&fa, 32, 64, levels, 3);
    ts_qg_fields_alloc(&fb, 32, 64, levels, 3);
    ts_qg_diagnose(a, &fa);
    ts_qg_diagnose(b, &fb);
    CU_ASSERT(fields_equal(&fa, &fb));
    ts_qg_fields_free(&fa), ts_qg_fields_free(&fb);
    ts_qg_free(a), ts_qg_free(b);
    unlink(path);

    /* not a restart file: one line naming the file */
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs("not netcdf\n", f);
    fclose(f);
    err[0] = '\0';
    CU_ASSERT(ts_qg_load(path, err, sizeof err) == NULL);
    CU_ASSERT(strstr(err, path) != NULL);
    unlink(path);
}

/* ---- (d) chaos ------------------------------------------------------------------------ */

/* A twin of m through a restart file, its PV perturbed by rel of its rms. */
static ts_qg *perturbed_twin(const ts_qg *m, double rel) {
    char path[] = "/tmp/tessera_qg_twin_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    ts_qg *b = ts_qg_save(m, path, NULL, err, sizeof err) ? NULL : ts_qg_load(path, err, sizeof err);
    unlink(path);
    if (b) ts_qg_perturb(b, 99, 1, rel);
    return b;
}

/* Two runs 1e-6 apart in a spun-up flow must diverge exponentially: the
 * difference grows by more than 100 in 20 days (an error-doubling time
 * under 3 days; docs/sim.md quotes the measured one) and keeps growing. */
static void test_chaotic_divergence(void) {
    ts_qg *a = spun_up(11, 120);
    CU_ASSERT_FATAL(a != NULL);
    ts_qg *b = perturbed_twin(a, 1e-6);
    CU_ASSERT_FATAL(b != NULL);
    double d0 = ts_qg_pv_distance(a, b), rms = ts_qg_pv_rms(a);
    CU_ASSERT(fabs(d0 / rms - 1e-6) < 1e-8);
    double d[5];
    for (int i = 0; i < 5; i++) {
        ts_qg_run_until(a, T2020 + (int64_t)(i + 1) * 5 * DAY);
        ts_qg_run_until(b, T2020 + (int64_t)(i + 1) * 5 * DAY);
        d[i] = ts_qg_pv_distance(a, b);
    }
    fprintf(stderr, "\n  PV difference / initial: %.3g %.3g %.3g %.3g %.3g at 5..25 days\n", d[0] / d0, d[1] / d0,
            d[2] / d0, d[3] / d0, d[4] / d0);
    CU_ASSERT(d[3] / d0 > 100.0);
    CU_ASSERT(d[1] > d[0] && d[2] > d[1] && d[3] > d[2]);
    ts_qg_free(a), ts_qg_free(b);
}

/* ---- the measurement quoted in docs/sim.md -------------------------------------------- */

/* Area-weighted rms difference of two z500 fields. */
static double z500_rms(const ts_qg_fields *a, const ts_qg_fields *b, const double *lat) {
    double s = 0, w = 0;
    for (size_t i = 0; i < a->nlat; i++) {
        double c = cos(lat[i] * PI / 180);
        for (size_t j = 0; j < a->nlon; j++) {
            double d = (double)a->z[i * a->nlon + j] - (double)b->z[i * a->nlon + j];
            s += c * d * d, w += c;
        }
    }
    return sqrt(s / w);
}

/* Least-squares slope of log(d) against t over the samples whose d lies
 * in (lo, hi): the exponential phase, above the initial adjustment and
 * below saturation. */
static double log_slope(const double *t, const double *d, int n, double lo, double hi, int *used) {
    double st = 0, sy = 0, stt = 0, sty = 0;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (d[i] > lo && d[i] < hi) {
            double y = log(d[i]);
            st += t[i], sy += y, stt += t[i] * t[i], sty += t[i] * y, k++;
        }
    *used = k;
    return k < 3 ? NAN : (k * sty - st * sy) / (k * stt - st * st);
}

static int measure_doubling_time(void) {
    enum { STARTS = 4, SAMPLES = 4 * 40 };
    const double rel = 1e-6;
    ts_qg *m = spun_up(1234, 180);
    if (!m) return 1;
    double lv[1] = {500};
    ts_qg_fields fa, fb;
    ts_qg_fields_alloc(&fa, 32, 64, lv, 1);
    ts_qg_fields_alloc(&fb, 32, 64, lv, 1);
    printf("error-doubling time of the 5.625-degree simulator: twin runs whose PV anomalies differ by %g of\n"
           "their rms, spun up 180 days from seed 1234, started every 91 days from 2020-01-01; doubling time\n"
           "= ln 2 / slope of ln(difference) over the samples between 1e-5 and 1e-2 (PV, relative to its rms)\n"
           "and between 0.1 and 100 m^2 s^-2 (z500 rms, area-weighted).\n\n", rel);
    printf("start        PV doubling (days)  z500 doubling (days)  z500 rms diff at 2, 5, 10, 20 d (m^2 s^-2)\n");
    double sum_pv = 0, sum_z = 0;
    for (int s = 0; s < STARTS; s++) {
        int64_t t0 = T2020 + (int64_t)s * 91 * DAY;
        ts_qg_run_until(m, t0);
        ts_qg *b = perturbed_twin(m, rel);
        if (!b) return 1;
        ts_qg *a = perturbed_twin(m, 0.0);
        double t[SAMPLES], dpv[SAMPLES], dz[SAMPLES];
        for (int i = 0; i < SAMPLES; i++) {
            ts_qg_run_until(a, t0 + (int64_t)(i + 1) * 6 * 3600);
            ts_qg_run_until(b, t0 + (int64_t)(i + 1) * 6 * 3600);
            t[i] = (i + 1) * 0.25;
            dpv[i] = ts_qg_pv_distance(a, b) / ts_qg_pv_rms(a);
            ts_qg_diagnose(a, &fa);
            ts_qg_diagnose(b, &fb);
            dz[i] = z500_rms(&fa, &fb, ts_qg_lat(a));
        }
        int npv, nz;
        double dpv_days = log(2) / log_slope(t, dpv, SAMPLES, 1e-5, 1e-2, &npv);
        double dz_days = log(2) / log_slope(t, dz, SAMPLES, 0.1, 100.0, &nz);
        char when[32];
        ts_format_datetime(t0, when, sizeof when);
        when[10] = '\0';
        printf("%s   %6.2f (%3d samples)   %6.2f (%3d samples)    %.3g  %.3g  %.3g  %.3g\n", when, dpv_days, npv,
               dz_days, nz, dz[7], dz[19], dz[39], dz[79]);
        sum_pv += dpv_days, sum_z += dz_days;
        ts_qg_free(a), ts_qg_free(b);
    }
    printf("\nmean         %6.2f                 %6.2f\n", sum_pv / STARTS, sum_z / STARTS);
    ts_qg_fields_free(&fa), ts_qg_fields_free(&fb);
    ts_qg_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--doubling-time") == 0) return measure_doubling_time();
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("qg", NULL, NULL);
    if (!s || !CU_add_test(s, "Rossby waves and hyperdiffusion: dispersion relation", test_rossby_waves) ||
        !CU_add_test(s, "Phillips baroclinic instability: growth rate", test_phillips_instability) ||
        !CU_add_test(s, "inviscid energy conservation", test_energy_conservation) ||
        !CU_add_test(s, "insolation matches core/solar", test_insolation_matches_core) ||
        !CU_add_test(s, "determinism for a seed", test_determinism) ||
        !CU_add_test(s, "restart continues bit for bit", test_restart_bit_identical) ||
        !CU_add_test(s, "chaotic divergence of twin runs", test_chaotic_divergence)) {
        CU_cleanup_registry();
        return 2;
    }
    return ts_cunit_run();
}
