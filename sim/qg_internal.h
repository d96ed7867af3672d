/* Inside the QG model: the struct and the helpers its files share
 * (sim/qg.c dynamics, sim/qg_forcing.c sun and background, sim/qg_diag.c
 * diagnostics, sim/qg_restart.c restart files). Not for use outside sim/.
 *
 * Spectral storage ("FFTW-natural" scaling). A field of one channel is
 * (ny, nk) complex, nk = nx/2 + 1, row r, column k >= 0:
 *   S-type (zero on the walls: psi, q, theta, Jacobians), row r is the mode
 *     m = r + 1:  f(x, y) = sum_k sum_r 2 X[r][k] e^{ikx} sin(m pi y / Ly)
 *   C-type (free on the walls: humidity, y-derivatives of S fields), row r
 *     is the mode m = r:  f = sum_k (X[0][k] + sum_{r>=1} 2 X[r][k] cos(m pi y / Ly)) e^{ikx}
 * with the sum over k meaning the real field (k > 0 taken with its
 * conjugate at -k). Those are exactly the inputs FFTW's DST-III/DCT-III
 * (RODFT01/REDFT01) and c2r expect, and a forward transform (r2c, then
 * DST-II/DCT-II) returns 2 nx ny X. The x transforms are FFTW's; the y
 * transforms are those same DSTs/DCTs written as products with small
 * matrices over the retained modes only (ny <= 72 points, 2/3 of the modes
 * kept: contiguous loops there beat FFTW's strided, buffered r2r 3 to 1).
 * Grid points sit at y_j = (j + 1/2) Ly / ny (cell centres), x_i = i Lx / nx.
 * Modes beyond the 2/3-rule truncation (k > kmax, m > mmax) stay zero.
 */
#ifndef TESSERA_SIM_QG_INTERNAL_H
#define TESSERA_SIM_QG_INTERNAL_H

#include <complex.h>
#include <fftw3.h> /* after complex.h: fftw_complex is then double complex */
#include <stdint.h>

#include "core/solar.h"
#include "sim/qg.h"

typedef double complex cplx;

#define QG_R_DRY 287.04     /* J kg^-1 K^-1 */
#define QG_GRAVITY 9.80665  /* m s^-2 */
#define QG_PI 3.14159265358979323846
#define QG_DEG (QG_PI / 180.0)
#define QG_OBLIQUITY 23.44  /* degrees: the season index is sin(declination)/sin(obliquity) */
#define QG_QSAT_T0 150.0    /* K: first entry of the 850 hPa saturation table */
#define QG_QSAT_DT 0.1      /* K: its spacing */
#define QG_QSAT_N 2001      /* entries: 150 K .. 350 K */

enum { QG_S = 0, QG_C = 1 };           /* y basis of a field */
enum { QG_INVERSE = 0, QG_FORWARD = 1 };
enum { QG_NFIELD = 3 };                /* state fields per channel: q1, q2, humidity */
/* Inverse-transform slots per channel. */
enum { IS_V1, IS_V2, IS_Q1X, IS_Q2X, IS_CY, IS_TH, NIS };      /* S-type grid fields */
enum { IC_P1Y, IC_P2Y, IC_Q1Y, IC_Q2Y, IC_CX, IC_C, NIC };     /* C-type grid fields */

/* A batch of nf fields of one y basis: spectral (nf, ny, nk) <-> grid
 * (nf, ny, nx) through mid (nf, ny, nk), the x spectra on the grid rows.
 * Inverse: y matrix spec -> mid, then c2r mid -> grid (which destroys mid:
 * it is scratch). Forward: r2c grid -> mid, then y matrix mid -> spec; the
 * caller scales and truncates. */
typedef struct {
    size_t nf;
    int basis, dir;
    cplx *spec;   /* (nf, ny, nk) */
    cplx *mid;    /* (nf, ny, nk) */
    double *grid; /* (nf, ny, nx) */
    fftw_plan x_plan;
} qg_batch;

/* The sun at one instant, reduced to what per-point fluxes need. */
typedef struct {
    double sin_dec, cos_dec, irradiance;
    double cos_h0, sin_h0; /* hour angle at longitude 0 */
} qg_sun;

/* The zonal basic state of one channel at one latitude. */
typedef struct {
    double psi1, psi2; /* m^2 s^-1 */
    double u1, u2;     /* m s^-1 */
    double q1y, q2y;   /* s^-1 m^-1: background PV gradients, beta included */
} qg_basic;

struct ts_qg {
    ts_qg_params p;
    /* derived constants */
    double f0, beta, F, Lx, Ly;
    double G;              /* R ln(p_lower/p_upper) / f0: thickness (m^2 s^-1) per kelvin */
    double w850;           /* weight of the upper layer in the 850 hPa wind */
    size_t nk, kmax, mmax; /* nx/2 + 1; the 2/3-rule truncation */
    size_t ns, ng;         /* ny*nk spectral, ny*nx grid values of one field */
    size_t nstate;         /* 2 channels * QG_NFIELD * ns */

    double *kx;            /* (nk) x wavenumbers, m^-1 */
    double *ly;            /* (ny + 1) y wavenumbers of modes m = 0..ny, m^-1 */
    double *inv11, *inv12, *inv21, *inv22; /* (ns) PV -> streamfunction, S rows */
    double *k2s;           /* (ns) K^2 of the S rows */
    double *keep_s, *keep_c; /* (ns) 1/(2 nx ny) inside the truncation, else 0 */
    double *E, *E2;        /* (nstate) hyperdiffusion integrating factors over dt, dt/2 */
    double *qsat850;       /* (QG_QSAT_N) saturation specific humidity at 850 hPa */
    /* y transforms as matrices (the DST/DCT restricted to the retained modes) */
    double *yinv_s;        /* (ny, mmax)      grid row j <- stored S row r: 2 sin((r+1) pi (j+1/2)/ny) */
    double *yinv_c;        /* (ny, mmax + 1)  grid row j <- stored C row r: (1 or 2) cos(r pi (j+1/2)/ny) */
    double *yfwd_s;        /* (mmax, ny)      DST-II: 2 sin((r+1) pi (j+1/2)/ny) */
    double *yfwd_c;        /* (mmax + 1, ny)  DCT-II: 2 cos(r pi (j+1/2)/ny) */

    /* the state */
    int64_t time, step;
    cplx *state;           /* (2, QG_NFIELD, ny, nk): q1, q2 (S), humidity (C) */
    double *slab_d;        /* (nlat, nlon) diurnal land slab, K */
    double *slab_e;        /* (nlat, nlon) seasonal land anomaly, K */

    /* time-stepping work */
    cplx *ka, *kb, *kc, *kd, *tmp; /* (nstate) each */
    cplx *psi;             /* (2, 2, ns) streamfunction of the current stage */

    /* forcing, frozen over a step (taken at its middle) */
    double season[2];      /* season index of each channel: +1 summer solstice, -1 winter */
    qg_basic *basic;       /* (2, ny) basic state on the model rows */
    cplx *heat;            /* (2, ns) S: diurnal heating of the thickness, m^2 s^-2 */
    cplx *asym;            /* (2, ns) S: land-sea equilibrium thickness per unit season index */

    /* static model-grid fields */
    double *topo_x, *topo_y; /* (2, ng) gradient of f0 h / H2, s^-1 m^-1 */
    double *evap_rate;     /* (2, ng) s^-1 */
    double *taper;         /* (ny) 0 at the walls, 1 inside */
    double *row_lat;       /* (ny) |latitude| of the model rows, degrees */
    double *lon_model;     /* (nx) degrees */
    double *cos_lon_model, *sin_lon_model; /* (nx) */

    qg_batch inv_s, inv_c, fwd_s, fwd_c, fwd_2s; /* fwd_2s: two S fields (heating, set-up) */

    /* output grid */
    double *lat, *lon;     /* (nlat), (nlon) degrees */
    double *cos_lon, *sin_lon; /* (nlon) */
    double *lsm, *height;  /* (nlat, nlon) land fraction, surface height m */
    double *insol_ann;     /* (nlat) annual-mean daily insolation, W m^-2 */
    double *basis_s, *basis_c; /* (nlat, mmax + 1) y bases of the output rows (their own channel) */
    size_t ndiag;          /* fields evaluated on the output grid */
    cplx *diag_spec;       /* (ndiag, nlat, nlon/2 + 1) */
    double *diag_grid;     /* (ndiag, nlat, nlon) */
    fftw_plan diag_plan;
};

/* sim/qg.c */
void qg_invert(const ts_qg *m, const cplx *q1, const cplx *q2, cplx *psi1, cplx *psi2);
void qg_execute(const ts_qg *m, qg_batch *b);
int qg_batch_make(ts_qg *m, qg_batch *b, int basis, int dir, size_t nf, char *err, size_t errcap);
void qg_batch_free(qg_batch *b);
/* Forward transform of b's grid fields, scaled and truncated into out
 * (nf, ns). */
void qg_forward_into(ts_qg *m, qg_batch *b, cplx *out);
double qg_mean_square(const ts_qg *m, const cplx *x, int basis);

/* sim/qg_forcing.c */
qg_sun qg_sun_at(double t);
double qg_toa(const qg_sun *s, double sin_lat, double cos_lat, double cos_lon, double sin_lon);
double qg_daily_insolation(const qg_sun *s, double lat_deg);
double qg_t_eq(const ts_qg *m, double p_hpa);
double qg_phi_ref(const ts_qg *m, double p_hpa);
double qg_qsat(double t, double p_hpa);
double qg_season_index(const qg_sun *s);
qg_basic qg_basic_at(const ts_qg *m, double season, double lat_abs_deg);
/* Forcing of the step centred on t: season, basic state, diurnal heating. */
void qg_update_forcing(ts_qg *m, double t);
/* Static fields: land, topography, evaporation, land-sea pattern, output
 * grid masks, annual insolation. 0 or -1 with err. */
int qg_setup_static(ts_qg *m, char *err, size_t errcap);
void qg_slab_init(ts_qg *m, double t);
void qg_slab_step(ts_qg *m, double t_mid);

/* sim/qg_diag.c */
int qg_setup_diag(ts_qg *m, char *err, size_t errcap);


#endif
