/* The gridded reference simulator: a two-layer quasi-geostrophic (Phillips)
 * model on two beta-plane channels, one per hemisphere, whose y-axis is laid
 * on the latitudes (y = a * |latitude|, walls at the equator and the pole)
 * and whose x-axis is periodic in longitude. docs/sim.md writes down the
 * equations, the parameters, the numerics and the restart file layout.
 *
 * State: the potential-vorticity anomaly of each layer and a humidity
 * tracer, as truncated Fourier (x) x sine/cosine (y) series, plus a surface
 * slab temperature on the output grid; time is whole seconds since 1970.
 * Everything the model does is a deterministic function of that state, the
 * parameters and the time, so save -> load -> continue is bit-identical.
 *
 * Diagnostics evaluate the spectral fields exactly at the output grid
 * (latitudes 90 -> -90 without pole rows, longitudes 0 -> 360 - dlon) and
 * turn them into ERA5 variables: z t u v q on pressure levels, t2m u10 v10
 * msl tisr lsm and surface z.
 */
#ifndef TESSERA_SIM_QG_H
#define TESSERA_SIM_QG_H

#include <stddef.h>
#include <stdint.h>

/* The equilibrium (basic) state the anomaly is measured from. */
typedef enum {
    TS_QG_BG_SEASONAL = 0, /* radiative-equilibrium jets that follow the sun (the simulator) */
    TS_QG_BG_UNIFORM = 1,  /* uniform layer winds bg_u1, bg_u2 (tests: Phillips normal modes) */
    TS_QG_BG_NONE = 2      /* a fluid at rest (tests: Rossby waves, conservation) */
} ts_qg_background;

typedef struct {
    /* output grid (the model's slab and diagnostics live on it) */
    size_t nlat, nlon;
    /* model grid of each hemispheric channel and the time step */
    size_t nx, ny; /* x points (FFT length), y points between the walls */
    int dt;        /* seconds; divides 3600 */

    /* planet and channel */
    double radius; /* m */
    double omega;  /* s^-1 */
    double lat0;   /* degrees: where f0 and beta are taken and the channel length measured */

    /* stratification and the vertical structure of the diagnostics */
    double deform_radius; /* m: baroclinic deformation radius 1/sqrt(F1 + F2), equal layers */
    double p_upper;       /* hPa: the pressure the upper layer's streamfunction stands for */
    double p_lower;       /* hPa: the same for the lower layer (the surface layer) */
    double t_eq_surface;  /* K: equilibrium temperature at 1000 hPa on the equator */
    double t_eq_exponent; /* T_eq(p) = t_eq_surface * (p / 1000 hPa)^t_eq_exponent */
    double phi_1000;      /* m^2 s^-2: reference geopotential of the 1000 hPa surface */

    /* forcing and dissipation (a time of 0 switches the process off) */
    ts_qg_background background;
    double bg_u1, bg_u2;   /* m s^-1: TS_QG_BG_UNIFORM only */
    /* equilibrium temperature T_eq(p) - dT_mid S(lat; mid_lo, mid_hi) - dT_polar S(lat; polar_lo, 90),
     * S a smooth step from 0 to 1 between two latitudes; each amplitude is
     * (annual mean) - (seasonal half-range) * season index */
    double mid_lo, mid_hi, polar_lo;  /* degrees */
    double dT_mid, dT_mid_season;     /* K: the midlatitude baroclinic zone */
    double dT_polar, dT_polar_season; /* K: the polar cap (most of the seasonal cycle) */
    double tau_rad;        /* s: Newtonian cooling of the layer thickness */
    double land_heating;   /* K: land warmer than sea in the equilibrium at the summer solstice */
    double diurnal_heating; /* K s^-1 per W m^-2 of insolation above its daily mean */
    double tau_ekman;      /* s: Ekman friction on the lower layer */
    double tau_hyper;      /* s: del^8 hyperdiffusion e-folding at the truncation scale */
    double topo_depth;     /* m: H2 in the topographic PV f0 h / H2 of the lower layer; 0 = none */

    /* humidity tracer (specific humidity at 850 hPa) */
    double rh_source;   /* relative humidity evaporation relaxes toward */
    double rh_condense; /* relative humidity above which vapour condenses */
    double tau_evap_sea, tau_evap_land, tau_condense; /* s */

    /* surface slab under t2m (diagnostic: it does not act on the flow) */
    double slab_absorb;     /* fraction of the insolation anomaly that heats the land slab */
    double slab_capacity;   /* J m^-2 K^-1 of the land slab (diurnal cycle) */
    double slab_tau;        /* s: damping of the diurnal slab */
    double season_gain;     /* K per W m^-2 of daily-mean insolation above the annual mean, land */
    double season_tau;      /* s: lag of the seasonal land anomaly */
    double sea_diurnal;     /* fraction of the land diurnal cycle seen over the sea */
    double lapse_rate;      /* K m^-1: t2m over orography */
} ts_qg_params;

/* Defaults of the simulator for an output grid (32 x 64 or 128 x 256):
 * returns 0, or -1 for a grid it has no resolution for. */
int ts_qg_params_default(ts_qg_params *p, size_t nlat, size_t nlon);

typedef struct ts_qg ts_qg;

/* NULL with one line in err when the parameters are inconsistent. */
ts_qg *ts_qg_create(const ts_qg_params *p, char *err, size_t errcap);
void ts_qg_free(ts_qg *m);
const ts_qg_params *ts_qg_get_params(const ts_qg *m);

/* The state at `t0` (unix seconds, a multiple of dt after 1970): the
 * equilibrium plus a small random PV anomaly drawn from `seed`. */
void ts_qg_init(ts_qg *m, int64_t t0, uint64_t seed);
/* Add to each layer's PV anomaly a random field whose rms is `rel_amp`
 * times that layer's rms (a perfect-model ensemble member, or the twin of
 * an error-growth experiment); distinct `member`s draw distinct fields. */
void ts_qg_perturb(ts_qg *m, uint64_t seed, uint64_t member, double rel_amp);

int64_t ts_qg_time(const ts_qg *m);
/* One time step, and steps up to time t (t >= the model time, reached in
 * whole steps: t - time is a multiple of dt). */
void ts_qg_step(ts_qg *m);
void ts_qg_run_until(ts_qg *m, int64_t t);
/* 0 while every state value is finite. */
int ts_qg_check_finite(const ts_qg *m);

/* Restart files (NetCDF; layout in docs/sim.md), written to path.part and
 * renamed. `history` goes into the global attribute of that name. */
int ts_qg_save(const ts_qg *m, const char *path, const char *history, char *err, size_t errcap);
ts_qg *ts_qg_load(const char *path, char *err, size_t errcap);

/* ---- diagnostics onto the output grid ----------------------------------------- */

typedef struct {
    size_t nlat, nlon, nlev;
    double *levels;       /* (nlev) hPa */
    float *z, *t, *u, *v, *q; /* (nlev, nlat, nlon) */
    float *t2m, *u10, *v10, *msl, *tisr; /* (nlat, nlon) */
    float *lsm, *zsfc;    /* (nlat, nlon), static */
} ts_qg_fields;

void ts_qg_fields_alloc(ts_qg_fields *f, size_t nlat, size_t nlon, const double *levels, size_t nlev);
void ts_qg_fields_free(ts_qg_fields *f);
/* All fields at the model's current time. */
void ts_qg_diagnose(ts_qg *m, ts_qg_fields *f);

/* Output grid coordinates: (nlat) degrees, 90 -> -90; (nlon) 0 -> 360. */
const double *ts_qg_lat(const ts_qg *m);
const double *ts_qg_lon(const ts_qg *m);

/* ---- quantities for tests and measurements ------------------------------------ */

/* Domain-mean total energy of the anomaly, m^2 s^-2:
 * 1/2 <|grad psi1|^2 + |grad psi2|^2 + F (psi1 - psi2)^2> / 2, both channels. */
double ts_qg_energy(const ts_qg *m);
/* rms over both channels and layers of the PV anomaly, s^-1. */
double ts_qg_pv_rms(const ts_qg *m);
/* rms of the PV difference of two models with the same parameters, s^-1. */
double ts_qg_pv_distance(const ts_qg *a, const ts_qg *b);
/* 1 when the two states (time, PV, humidity, slab) are equal bit for bit. */
int ts_qg_state_equal(const ts_qg *a, const ts_qg *b);

/* Spectral access to the PV anomaly of `layer` (0 upper, 1 lower) in
 * `hemisphere` (0 north, 1 south): the amplitude A of mode (k, m) in
 *   q'(x, y) = sum_{k >= 0} sum_{m >= 1} Re(A e^{i k 2 pi x / Lx}) sin(m pi y / Ly),
 * k in 0..kmax (A real for k = 0), m in 1..mmax. Setters leave the other
 * coefficients alone. */
void ts_qg_truncation(const ts_qg *m, size_t *kmax, size_t *mmax);
double _Complex ts_qg_get_pv_mode(const ts_qg *m, int hemisphere, int layer, size_t k, size_t mode);
void ts_qg_set_pv_mode(ts_qg *m, int hemisphere, int layer, size_t k, size_t mode, double _Complex value);
/* The same for the streamfunction anomaly (from the PV by inversion). */
double _Complex ts_qg_get_psi_mode(const ts_qg *m, int hemisphere, int layer, size_t k, size_t mode);
/* Zero the PV anomaly and the humidity of both channels. */
void ts_qg_clear(ts_qg *m);
/* Physical constants the model derived: f0 (s^-1), beta (m^-1 s^-1),
 * F = F1 = F2 (m^-2), channel length Lx and width Ly (m). */
void ts_qg_constants(const ts_qg *m, double *f0, double *beta, double *F, double *Lx, double *Ly);

/* TOA flux the model heats with, at one output grid point and time (W m^-2),
 * computed the fast way (one ts_sun_at per step); tests compare it with
 * ts_solar_toa_flux. */
double ts_qg_toa_flux(const ts_qg *m, double unix_seconds, size_t ilat, size_t ilon);

#endif
