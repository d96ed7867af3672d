/* A two-dimensional lattice-Boltzmann solver (D2Q9) for incompressible
 * channel flow past an obstacle: the CFD reference of tessera synth-mesh.
 * docs/mesh-data.md gives the equations, units and limits.
 *
 * Lattice units throughout: cell (i, j) has its centre at (i + 1/2, j + 1/2),
 * the channel is [0, nx] x [0, ny], time step 1, c_s^2 = 1/3.
 *  - collision: two-relaxation-time (TRT, Ginzburg 2008): the symmetric part
 *    relaxes with 1/tau (viscosity nu = (tau - 1/2)/3), the antisymmetric
 *    part with the rate that makes Lambda = (tau+ - 1/2)(tau- - 1/2) = 3/16,
 *    for which half-way bounce-back puts a straight wall exactly half a cell
 *    out (Poiseuille flow is reproduced exactly), and which stays stable at
 *    tau close to 1/2 where BGK does not;
 *  - walls y = 0 and y = ny: half-way bounce-back (no slip);
 *  - obstacle: interpolated bounce-back (Bouzidi, Firdaouss & Lallemand
 *    2001, linear), the wall where the link crosses the curved boundary;
 *  - inflow x = 0: bounce-back with the moving-wall term, parabolic profile
 *    u(y) = 4 u_max y (ny - y) / ny^2, v = 0;
 *  - outflow x = nx: anti-bounce-back at density 1 (pressure reference 0),
 *    velocity extrapolated from the last two columns;
 *  - or periodic in x with a uniform body force (Guo forcing, split over
 *    the TRT parts), for tests.
 * Rows are updated in parallel with OpenMP; the fields do not depend on the
 * thread count (only the summation order of the obstacle force does).
 */
#ifndef TESSERA_SIM_LBM_H
#define TESSERA_SIM_LBM_H

#include <stddef.h>

#include "sim/obstacle.h"

typedef struct {
    size_t nx, ny;              /* cells along and across the channel */
    double tau;                 /* relaxation time of the symmetric part, > 1/2 */
    double u_max;               /* inflow centreline speed (open channel) */
    int periodic;               /* 1: periodic in x with body force force_x, no inflow/outflow */
    double force_x;             /* body force density along x (periodic only) */
    double magic;               /* TRT Lambda; 0 = 3/16 */
    int regularized;            /* 1: regularized BGK instead of TRT (open channel only) */
    const ts_obstacle *obstacle; /* in lattice units, or NULL */
} ts_lbm_params;

typedef struct ts_lbm ts_lbm;

/* Checks the parameters (tau > 1/2, |u_max| < 0.3, obstacle clear of the
 * walls and the ends); returns NULL with one line in err otherwise. */
ts_lbm *ts_lbm_create(const ts_lbm_params *p, char *err, size_t cap);
void ts_lbm_free(ts_lbm *m);

/* Equilibrium at density 1 with the inflow profile in every fluid cell (0
 * in the periodic case), plus a transverse velocity bump of `kick` x u_max
 * centred one obstacle height behind the obstacle, which breaks the symmetry
 * so vortex shedding starts sooner. */
void ts_lbm_init(ts_lbm *m, double kick);

/* n time steps. Returns 0, or -1 when the state has become non-finite or a
 * speed exceeds 0.5 (the lattice's limit: resolution too coarse for the
 * Reynolds number). */
int ts_lbm_run(ts_lbm *m, size_t n);

/* Change the inflow centreline speed (a smooth start ramps it up). */
void ts_lbm_set_inflow(ts_lbm *m, double u_max);

/* Force (x, y) the fluid exerts on the obstacle during the last step
 * (momentum exchange), in lattice units. */
void ts_lbm_obstacle_force(const ts_lbm *m, double force[2]);

/* Total mass: the sum of all populations of fluid cells. */
double ts_lbm_mass(const ts_lbm *m);

/* Density and velocity of every cell, row-major (ny, nx); solid cells hold
 * density 1 and velocity 0. Any output may be NULL. */
void ts_lbm_macro(const ts_lbm *m, double *rho, double *ux, double *uy);

int ts_lbm_solid(const ts_lbm *m, size_t i, size_t j);
size_t ts_lbm_nx(const ts_lbm *m);
size_t ts_lbm_ny(const ts_lbm *m);

#endif
