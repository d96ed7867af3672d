/* D2Q9 two-relaxation-time lattice Boltzmann, fused pull-stream-collide
 * (sim/lbm.h). The array holds post-collision populations; a step pulls
 * each population from its upstream neighbour (or from a boundary rule when
 * the neighbour is a wall, the obstacle, the inflow or the outflow) and
 * collides. */
#include "sim/lbm.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

enum { Q = 9 };
static const int CX[Q] = {0, 1, 0, -1, 0, 1, -1, -1, 1};
static const int CY[Q] = {0, 0, 1, 0, -1, 1, 1, -1, -1};
static const int OPP[Q] = {0, 3, 4, 1, 2, 7, 8, 5, 6};
static const double W[Q] = {4.0 / 9, 1.0 / 9, 1.0 / 9, 1.0 / 9, 1.0 / 9, 1.0 / 36, 1.0 / 36, 1.0 / 36, 1.0 / 36};


enum { CELL_FLUID = 0, CELL_SOLID = 1, CELL_EDGE = 2 }; /* EDGE: fluid next to a boundary of any kind */

struct ts_lbm {
    size_t nx, ny;
    double omega_p, omega_m; /* TRT rates of the symmetric and antisymmetric parts */
    double u_max, force_x;
    int periodic, regularized;
    uint8_t *cell;   /* (ny, nx) CELL_* */
    int32_t *slot;   /* (ny, nx) row of qlink for EDGE cells next to the obstacle, else -1 */
    double (*qlink)[Q]; /* (nslots, Q) wall fraction along link i from the cell centre, -1 if no obstacle link */
    size_t nslots;
    double *f, *g;   /* (Q, ny, nx) post-collision populations; g is the next step */
    double *out_u;   /* (ny, 2) outflow wall velocity extrapolated from the last two columns */
    double force[2];
    double max_u2;
};

static inline size_t at(const ts_lbm *m, size_t k, size_t j, size_t i) { return (k * m->ny + j) * m->nx + i; }

/* The inflow profile at height y (lattice units). */
static inline double inflow_u(const ts_lbm *m, double y) {
    double h = (double)m->ny;
    return 4.0 * m->u_max * y * (h - y) / (h * h);
}

/* Where along the link from p to p + c (0..1) the obstacle boundary lies. */
static double link_fraction(const ts_obstacle *o, double x, double y, int cx, int cy) {
    double lo = 0, hi = 1;
    for (int it = 0; it < 48; it++) {
        double mid = 0.5 * (lo + hi);
        if (ts_obstacle_inside(o, x + mid * cx, y + mid * cy)) hi = mid;
        else lo = mid;
    }
    return 0.5 * (lo + hi);
}

static void equilibrium(double rho, double ux, double uy, double feq[Q]) {
    double u2 = 1.5 * (ux * ux + uy * uy);
    for (int k = 0; k < Q; k++) {
        double cu = 3.0 * (CX[k] * ux + CY[k] * uy);
        feq[k] = W[k] * rho * (1.0 + cu + 0.5 * cu * cu - u2);
    }
}

ts_lbm *ts_lbm_create(const ts_lbm_params *p, char *err, size_t cap) {
    if (p->nx < 4 || p->ny < 4) return TS_FAIL(err, cap, "lattice smaller than 4 x 4 cells"), NULL;
    if (!(p->tau > 0.5)) return TS_FAIL(err, cap, "relaxation time tau must exceed 1/2 (viscosity > 0)"), NULL;
    if (!(fabs(p->u_max) < 0.3))
        return TS_FAIL(err, cap, "inflow speed must stay below 0.3 lattice units (Mach number below ~0.5)"), NULL;
    ts_lbm *m = ts_calloc(1, sizeof *m);
    m->nx = p->nx, m->ny = p->ny;
    m->omega_p = 1.0 / p->tau;
    double magic = p->magic > 0 ? p->magic : 3.0 / 16.0;
    m->omega_m = 1.0 / (0.5 + magic / (p->tau - 0.5));
    m->u_max = p->periodic ? 0.0 : p->u_max;
    m->periodic = p->periodic;
    m->regularized = p->regularized && !p->periodic; /* the body force is TRT-only */
    m->force_x = p->periodic ? p->force_x : 0.0;
    size_t n = m->nx * m->ny;
    m->cell = ts_calloc(n, 1);
    m->slot = ts_malloc(n * sizeof *m->slot);
    m->f = ts_malloc(Q * n * sizeof *m->f);
    m->g = ts_malloc(Q * n * sizeof *m->g);
    m->out_u = ts_calloc(2 * m->ny, sizeof *m->out_u);
    const ts_obstacle *o = p->obstacle;
    for (size_t j = 0; j < m->ny; j++)
        for (size_t i = 0; i < m->nx; i++)
            if (o && ts_obstacle_inside(o, (double)i + 0.5, (double)j + 0.5)) {
                if (i < 2 || j < 2 || i + 2 >= m->nx || j + 2 >= m->ny) {
                    ts_lbm_free(m);
                    return TS_FAIL(err, cap, "the obstacle touches the channel walls or ends"), NULL;
                }
                m->cell[j * m->nx + i] = CELL_SOLID;
            }
    /* Classify fluid cells and record the obstacle links. */
    for (size_t j = 0; j < m->ny; j++)
        for (size_t i = 0; i < m->nx; i++) {
            size_t c = j * m->nx + i;
            m->slot[c] = -1;
            if (m->cell[c] == CELL_SOLID) continue;
            int edge = j == 0 || j + 1 == m->ny || (!m->periodic && (i == 0 || i + 1 == m->nx));
            int solid_link = 0;
            for (int k = 1; k < Q; k++) {
                long ii = (long)i + CX[k], jj = (long)j + CY[k];
                if (m->periodic) ii = (ii + (long)m->nx) % (long)m->nx;
                if (ii < 0 || jj < 0 || ii >= (long)m->nx || jj >= (long)m->ny) continue;
                if (m->cell[(size_t)jj * m->nx + (size_t)ii] == CELL_SOLID) solid_link = 1;
            }
            if (m->periodic && (i == 0 || i + 1 == m->nx)) edge = 1; /* wraps: slow path */
            if (edge || solid_link) m->cell[c] = CELL_EDGE;
            if (solid_link) m->slot[c] = (int32_t)m->nslots++;
        }
    m->qlink = ts_malloc((m->nslots ? m->nslots : 1) * sizeof *m->qlink);
    for (size_t j = 0; j < m->ny; j++)
        for (size_t i = 0; i < m->nx; i++) {
            int32_t s = m->slot[j * m->nx + i];
            if (s < 0) continue;
            for (int k = 0; k < Q; k++) {
                m->qlink[s][k] = -1;
                long ii = (long)i + CX[k], jj = (long)j + CY[k];
                if (k == 0 || ii < 0 || jj < 0 || ii >= (long)m->nx || jj >= (long)m->ny) continue;
                if (m->cell[(size_t)jj * m->nx + (size_t)ii] == CELL_SOLID)
                    m->qlink[s][k] = link_fraction(o, (double)i + 0.5, (double)j + 0.5, CX[k], CY[k]);
            }
        }
    ts_lbm_init(m, 0.0);
    return m;
}

void ts_lbm_free(ts_lbm *m) {
    if (!m) return;
    free(m->cell), free(m->slot), free(m->qlink), free(m->f), free(m->g), free(m->out_u);
    free(m);
}

size_t ts_lbm_nx(const ts_lbm *m) { return m->nx; }
size_t ts_lbm_ny(const ts_lbm *m) { return m->ny; }
int ts_lbm_solid(const ts_lbm *m, size_t i, size_t j) { return m->cell[j * m->nx + i] == CELL_SOLID; }

void ts_lbm_init(ts_lbm *m, double kick) {
    /* Where the kick goes: one obstacle height behind its rear, at its
     * centre line (found from the solid cells). */
    double xmin = 1e30, xmax = -1e30, ymin = 1e30, ymax = -1e30;
    for (size_t j = 0; j < m->ny; j++)
        for (size_t i = 0; i < m->nx; i++)
            if (m->cell[j * m->nx + i] == CELL_SOLID) {
                xmin = fmin(xmin, (double)i), xmax = fmax(xmax, (double)i + 1);
                ymin = fmin(ymin, (double)j), ymax = fmax(ymax, (double)j + 1);
            }
    int has_obstacle = xmax > xmin;
    double d = has_obstacle ? ymax - ymin : 1, kx = xmax + d, ky = 0.5 * (ymin + ymax);
    for (size_t j = 0; j < m->ny; j++)
        for (size_t i = 0; i < m->nx; i++) {
            size_t c = j * m->nx + i;
            double feq[Q], x = (double)i + 0.5, y = (double)j + 0.5;
            double ux = m->cell[c] == CELL_SOLID ? 0.0 : inflow_u(m, y), uy = 0;
            if (has_obstacle && kick != 0 && m->cell[c] != CELL_SOLID) {
                double r2 = ((x - kx) * (x - kx) + (y - ky) * (y - ky)) / (d * d);
                uy = kick * m->u_max * exp(-r2);
            }
            equilibrium(1.0, ux, uy, feq);
            for (int k = 0; k < Q; k++) m->f[at(m, (size_t)k, j, i)] = feq[k];
        }
    m->force[0] = m->force[1] = 0;
}

/* Density and velocity of the populations fin (with half the body force,
 * as Guo's scheme defines the velocity). */
static inline void moments(const double fin[Q], double fx, double *rho, double *ux, double *uy) {
    double r = 0, mx = 0, my = 0;
    for (int k = 0; k < Q; k++) r += fin[k], mx += CX[k] * fin[k], my += CY[k] * fin[k];
    *rho = r, *ux = (mx + 0.5 * fx) / r, *uy = my / r;
}

/* Collision of fin into column c of out. Returns u^2.
 * TRT, with Guo forcing split into its symmetric and antisymmetric parts;
 * or regularized BGK (Latt & Chopard 2006): the non-equilibrium part is
 * first projected on its second-order (viscous stress) moment, which drops
 * the ghost modes that make BGK and TRT blow up at tau near 1/2 and at
 * under-resolved shear layers. */
static inline double collide(const ts_lbm *m, const double fin[Q], double *out, size_t c, size_t n) {
    double rho, ux, uy, fx = m->force_x;
    moments(fin, fx, &rho, &ux, &uy);
    double u2 = 1.5 * (ux * ux + uy * uy), wp = m->omega_p, wm = m->omega_m;
    if (m->regularized) {
        double feq[Q], pxx = 0, pyy = 0, pxy = 0;
        for (int k = 0; k < Q; k++) {
            double cu = 3.0 * (CX[k] * ux + CY[k] * uy);
            feq[k] = W[k] * rho * (1.0 + cu + 0.5 * cu * cu - u2);
            double ne = fin[k] - feq[k];
            pxx += CX[k] * CX[k] * ne, pyy += CY[k] * CY[k] * ne, pxy += CX[k] * CY[k] * ne;
        }
        for (int k = 0; k < Q; k++) {
            double qxx = CX[k] * CX[k] - 1.0 / 3, qyy = CY[k] * CY[k] - 1.0 / 3, qxy = CX[k] * CY[k];
            double ne = 4.5 * W[k] * (qxx * pxx + qyy * pyy + 2.0 * qxy * pxy);
            out[(size_t)k * n + c] = feq[k] + (1.0 - wp) * ne;
        }
        return ux * ux + uy * uy;
    }
    double sp = 1.0 - 0.5 * wp, sm = 1.0 - 0.5 * wm;
    double e0 = W[0] * rho * (1.0 - u2);
    out[c] = fin[0] - wp * (fin[0] - e0) + sp * W[0] * (-3.0 * ux * fx);
    static const int PAIRS[4] = {1, 2, 5, 6}; /* with their opposites 3, 4, 7, 8 */
    for (int p = 0; p < 4; p++) {
        int k = PAIRS[p], o = OPP[k];
        double cu = 3.0 * (CX[k] * ux + CY[k] * uy);
        double ep = W[k] * rho * (1.0 + 0.5 * cu * cu - u2), em = W[k] * rho * cu;
        double fp = 0.5 * (fin[k] + fin[o]), fm = 0.5 * (fin[k] - fin[o]);
        double cf = CX[k] * fx;
        double srcp = sp * W[k] * (9.0 * (CX[k] * ux + CY[k] * uy) * cf - 3.0 * ux * fx);
        double srcm = sm * W[k] * 3.0 * cf;
        double dp = -wp * (fp - ep) + srcp, dm = -wm * (fm - em) + srcm;
        out[(size_t)k * n + c] = fin[k] + dp + dm;
        out[(size_t)o * n + c] = fin[o] + dp - dm;
    }
    return ux * ux + uy * uy;
}

/* The outflow wall velocity of each row, extrapolated to x = nx from the
 * last two columns of the current state. */
static void outflow_velocity(ts_lbm *m) {
    size_t n = m->nx * m->ny;
    for (size_t j = 0; j < m->ny; j++) {
        double u[2][2];
        for (int s = 0; s < 2; s++) {
            size_t c = j * m->nx + m->nx - 1 - (size_t)s;
            double fin[Q], rho;
            for (int k = 0; k < Q; k++) fin[k] = m->f[(size_t)k * n + c];
            moments(fin, 0, &rho, &u[s][0], &u[s][1]);
        }
        m->out_u[2 * j] = 1.5 * u[0][0] - 0.5 * u[1][0];
        m->out_u[2 * j + 1] = 1.5 * u[0][1] - 0.5 * u[1][1];
    }
}

/* Pull the populations of an EDGE cell, applying the boundary rules. */
static void gather_edge(const ts_lbm *m, size_t i, size_t j, double fin[Q], double force[2]) {
    size_t n = m->nx * m->ny, c = j * m->nx + i;
    const double *f = m->f;
    int32_t s = m->slot[c];
    fin[0] = f[c];
    for (int k = 1; k < Q; k++) {
        int o = OPP[k]; /* the direction that left this cell toward the source */
        long si = (long)i - CX[k], sj = (long)j - CY[k];
        if (m->periodic) si = (si + (long)m->nx) % (long)m->nx;
        if (sj < 0 || sj >= (long)m->ny) {
            fin[k] = f[(size_t)o * n + c]; /* wall: bounce back */
        } else if (si < 0) {
            /* inflow: moving-wall bounce-back, the profile where the link crosses x = 0 */
            double uw = inflow_u(m, (double)j + 0.5 - 0.5 * CY[k]);
            fin[k] = f[(size_t)o * n + c] + 6.0 * W[k] * CX[k] * uw;
        } else if (si >= (long)m->nx) {
            /* outflow: anti-bounce-back at density 1 */
            double ux = m->out_u[2 * j], uy = m->out_u[2 * j + 1];
            double cu = 3.0 * (CX[k] * ux + CY[k] * uy);
            fin[k] = -f[(size_t)o * n + c] + 2.0 * W[k] * (1.0 + 0.5 * cu * cu - 1.5 * (ux * ux + uy * uy));
        } else if (m->cell[(size_t)sj * m->nx + (size_t)si] == CELL_SOLID) {
            double q = s >= 0 ? m->qlink[s][o] : 0.5, fo = f[(size_t)o * n + c];
            long fi = (long)i + CX[k], fj = (long)j + CY[k]; /* the next cell away from the wall */
            int far_fluid = fi >= 0 && fj >= 0 && fi < (long)m->nx && fj < (long)m->ny &&
                            m->cell[(size_t)fj * m->nx + (size_t)fi] != CELL_SOLID;
            if (q < 0.5 && far_fluid)
                fin[k] = 2.0 * q * fo + (1.0 - 2.0 * q) * f[(size_t)o * n + (size_t)fj * m->nx + (size_t)fi];
            else if (q >= 0.5)
                fin[k] = fo / (2.0 * q) + (2.0 * q - 1.0) / (2.0 * q) * f[(size_t)k * n + c];
            else
                fin[k] = fo;
            /* momentum carried into the obstacle along c_o and back along c_k */
            force[0] += CX[o] * (fo + fin[k]);
            force[1] += CY[o] * (fo + fin[k]);
        } else {
            fin[k] = f[(size_t)k * n + (size_t)sj * m->nx + (size_t)si];
        }
    }
}

int ts_lbm_run(ts_lbm *m, size_t steps) {
    size_t n = m->nx * m->ny, nx = m->nx;
    for (size_t t = 0; t < steps; t++) {
        if (!m->periodic) outflow_velocity(m);
        double fx = 0, fy = 0, umax2 = 0;
        const double *f = m->f;
        double *g = m->g;
#pragma omp parallel for schedule(static) reduction(+ : fx, fy) reduction(max : umax2)
        for (size_t j = 0; j < m->ny; j++) {
            double force[2] = {0, 0};
            for (size_t i = 0; i < nx; i++) {
                size_t c = j * nx + i;
                uint8_t type = m->cell[c];
                if (type == CELL_SOLID) continue;
                double fin[Q];
                if (type == CELL_FLUID) {
                    for (int k = 0; k < Q; k++)
                        fin[k] = f[(size_t)k * n + c - (size_t)((long)CY[k] * (long)nx + CX[k])];
                } else {
                    gather_edge(m, i, j, fin, force);
                }
                double u2 = collide(m, fin, g, c, n);
                if (!(u2 <= umax2)) umax2 = u2 == u2 ? u2 : INFINITY;
            }
            fx += force[0], fy += force[1];
        }
        m->f = g, m->g = (double *)f;
        m->force[0] = fx, m->force[1] = fy;
        m->max_u2 = umax2;
        if (!(umax2 <= 0.25)) return -1;
    }
    return 0;
}

void ts_lbm_set_inflow(ts_lbm *m, double u_max) {
    if (!m->periodic) m->u_max = u_max;
}

void ts_lbm_obstacle_force(const ts_lbm *m, double force[2]) { force[0] = m->force[0], force[1] = m->force[1]; }

double ts_lbm_mass(const ts_lbm *m) {
    size_t n = m->nx * m->ny;
    double mass = 0;
    for (size_t c = 0; c < n; c++)
        if (m->cell[c] != CELL_SOLID)
            for (int k = 0; k < Q; k++) mass += m->f[(size_t)k * n + c];
    return mass;
}

void ts_lbm_macro(const ts_lbm *m, double *rho, double *ux, double *uy) {
    size_t n = m->nx * m->ny;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n; c++) {
        double r = 1, u = 0, v = 0;
        if (m->cell[c] != CELL_SOLID) {
            double fin[Q];
            for (int k = 0; k < Q; k++) fin[k] = m->f[(size_t)k * n + c];
            /* these are post-collision: the force has added its whole
             * momentum, of which the velocity counts half */
            moments(fin, -m->force_x, &r, &u, &v);
        }
        if (rho) rho[c] = r;
        if (ux) ux[c] = u;
        if (uy) uy[c] = v;
    }
}
