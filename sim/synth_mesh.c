/* The synth-mesh driver: draw a scenario per trajectory, mesh it, run the
 * lattice Boltzmann solver through the spin-up and the saved steps, sample
 * to the mesh nodes, write (sim/synth_mesh.h). */
#include "sim/synth_mesh.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rng.h"
#include "io/mesh_file.h"
#include "sim/lbm.h"
#include "sim/obstacle.h"

#define PI 3.14159265358979323846
#define CHANNEL_L 1.6
#define CHANNEL_H 0.41
#define D_MIN 0.08 /* obstacle height across the flow, physical */
#define D_MAX 0.12
#define U_LATTICE 0.1 /* inflow centreline speed in lattice units: Mach 0.17 */
/* The scenario draws: TS_RNG_PERTURBATION, a stream range of its own. */
#define SCENARIO_STREAM (UINT64_C(0x53594e4d) << 32)

size_t ts_synth_mesh_min_lattice(double re_max) { return (size_t)ceil(re_max / 17.0 * CHANNEL_H / D_MIN); }

typedef struct {
    ts_obstacle shape; /* physical */
    double re, u_mean, nu;
} scenario;

static scenario draw(const ts_synth_mesh_opts *o, size_t traj) {
    ts_rng_key key = ts_rng_key_make(o->seed, TS_RNG_PERTURBATION);
    uint64_t stream = SCENARIO_STREAM | traj;
    double r[10];
    for (int k = 0; k < 10; k++) r[k] = ts_rng_uniform1(key, stream, (uint64_t)k);
    scenario s;
    ts_obstacle *b = &s.shape;
    b->kind = (ts_obstacle_kind)((int)(r[0] * TS_OBSTACLE_KINDS) % TS_OBSTACLE_KINDS);
    b->angle = 0, b->corner = 0;
    b->a = 1, b->b = 1;
    if (b->kind == TS_OBSTACLE_ELLIPSE) {
        b->b = 0.5 + 0.5 * r[1]; /* aspect 0.5..1, any orientation */
        b->angle = PI * (r[2] - 0.5);
    } else if (b->kind == TS_OBSTACLE_ROUNDED_RECT) {
        b->b = 0.5 + 1.0 * r[1];
        b->corner = (0.15 + 0.35 * r[3]) * fmin(b->a, b->b);
        b->angle = 0.5 * PI * (r[2] - 0.5);
    }
    double d = D_MIN + (D_MAX - D_MIN) * r[4], h = ts_obstacle_height(b);
    b->a *= d / h, b->b *= d / h, b->corner *= d / h;
    b->cx = 0.2 + 0.15 * r[5];
    b->cy = 0.5 * CHANNEL_H + 0.05 * (2 * r[6] - 1);
    s.u_mean = 0.7 + 0.6 * r[7];
    s.re = o->re_min + (o->re_max - o->re_min) * r[8];
    s.nu = s.u_mean * d / s.re;
    return s;
}

/* Bilinear sampling of the lattice at the nodes: four cells and weights per
 * node. Beyond the walls a mirrored ghost cell (velocity negated, so it is 0
 * on the wall; pressure copied); solid cells count as velocity 0 and drop
 * out of the pressure average. */
typedef struct {
    size_t cell[4];
    double wu[4], wp[4];
} stencil;

static void build_stencils(const ts_lbm *m, const ts_tri_mesh *mesh, double dx, stencil *st) {
    size_t nx = ts_lbm_nx(m), ny = ts_lbm_ny(m);
    for (size_t n = 0; n < mesh->nodes; n++) {
        double gx = mesh->xy[2 * n] / dx - 0.5, gy = mesh->xy[2 * n + 1] / dx - 0.5;
        gx = fmin(fmax(gx, 0.0), (double)nx - 1.0);
        long i0 = (long)floor(gx), j0 = (long)floor(gy);
        if (i0 >= (long)nx - 1) i0 = (long)nx - 2;
        double fx = gx - (double)i0, fy = gy - (double)j0, psum = 0;
        for (int k = 0; k < 4; k++) {
            long i = i0 + (k & 1), j = j0 + (k >> 1);
            double w = ((k & 1) ? fx : 1 - fx) * ((k >> 1) ? fy : 1 - fy), sign = 1;
            if (j < 0) j = 0, sign = -1;
            if (j >= (long)ny) j = (long)ny - 1, sign = -1;
            st[n].cell[k] = (size_t)j * nx + (size_t)i;
            int solid = ts_lbm_solid(m, (size_t)i, (size_t)j);
            st[n].wu[k] = solid ? 0 : sign * w;
            st[n].wp[k] = solid ? 0 : w;
            psum += st[n].wp[k];
        }
        for (int k = 0; k < 4; k++) st[n].wp[k] = psum > 0 ? st[n].wp[k] / psum : 0.25;
    }
}

static double inflow_profile(double u_max, double y) { return 4 * u_max * y * (CHANNEL_H - y) / (CHANNEL_H * CHANNEL_H); }

int ts_synth_mesh_run(const ts_synth_mesh_opts *o, char *err, size_t cap) {
    ts_mesh_writer *w = ts_mesh_writer_create(o->path, o->steps, o->dt, o->history, err, cap);
    if (!w) return -1;
    double t_start = ts_now();
    for (size_t traj = 0; traj < o->trajectories; traj++) {
        double t0 = ts_now();
        scenario s = draw(o, traj);
        ts_tri_mesh mesh;
        if (ts_obstacle_mesh(&s.shape, CHANNEL_L, CHANNEL_H, o->mesh_size * CHANNEL_H, o->refine, &mesh, err, cap))
            return ts_mesh_writer_abandon(w), -1;
        /* lattice units: dx across, dt_lat so that a saved step is a whole
         * number of lattice steps and the inflow stays at or under U_LATTICE */
        double dx = CHANNEL_H / (double)o->lattice, u_max = 1.5 * s.u_mean;
        size_t sub = (size_t)ceil(o->dt * u_max / (U_LATTICE * dx));
        double dt_lat = o->dt / (double)sub, u_lat = u_max * dt_lat / dx, nu_lat = s.nu * dt_lat / (dx * dx);
        ts_obstacle body = ts_obstacle_scaled(&s.shape, 1.0 / dx);
        ts_lbm_params p = {.nx = (size_t)lround(CHANNEL_L / dx), .ny = o->lattice, .tau = 3 * nu_lat + 0.5,
                           .u_max = u_lat, .obstacle = &body, .regularized = 1};
        char e2[512];
        ts_lbm *m = ts_lbm_create(&p, e2, sizeof e2);
        if (!m) {
            snprintf(err, cap, "trajectory %zu: %s", traj, e2);
            return ts_tri_mesh_free(&mesh), ts_mesh_writer_abandon(w), -1;
        }
        /* smooth start: fluid at rest, inflow ramped up as sin^2 over a
         * quarter of the spin-up, symmetry broken by a transverse kick */
        ts_lbm_set_inflow(m, 0);
        ts_lbm_init(m, 0.5);
        size_t spin = (size_t)ceil(o->spinup / dt_lat), ramp = spin / 4 + 1;
        int bad = 0;
        for (size_t t = 0; t < spin && !bad; t++) {
            double r = t < ramp ? sin(0.5 * PI * (double)t / (double)ramp) : 1.0;
            ts_lbm_set_inflow(m, u_lat * r * r);
            bad = ts_lbm_run(m, 1);
        }
        ts_lbm_set_inflow(m, u_lat);
        size_t nn = mesh.nodes, ncell = ts_lbm_nx(m) * ts_lbm_ny(m);
        stencil *st = ts_malloc(nn * sizeof *st);
        build_stencils(m, &mesh, dx, st);
        float *vel = ts_malloc(o->steps * nn * 2 * sizeof *vel), *pre = ts_malloc(o->steps * nn * sizeof *pre);
        double *rho = ts_malloc(ncell * sizeof *rho), *ux = ts_malloc(ncell * sizeof *ux), *uy = ts_malloc(ncell * sizeof *uy);
        double uscale = dx / dt_lat, pscale = uscale * uscale / 3.0; /* p = c_s^2 (rho - 1), kinematic */
        for (size_t t = 0; t < o->steps && !bad; t++) {
            if (t > 0) bad = ts_lbm_run(m, sub);
            if (bad) break;
            ts_lbm_macro(m, rho, ux, uy);
            for (size_t n = 0; n < nn; n++) {
                double u = 0, v = 0, pr = 0;
                for (int k = 0; k < 4; k++) {
                    size_t c = st[n].cell[k];
                    u += st[n].wu[k] * ux[c], v += st[n].wu[k] * uy[c], pr += st[n].wp[k] * (rho[c] - 1.0);
                }
                u *= uscale, v *= uscale, pr *= pscale;
                int32_t type = mesh.node_type[n];
                if (type == TS_NODE_OBSTACLE || type == TS_NODE_WALL_BOUNDARY) u = 0, v = 0;
                if (type == TS_NODE_INFLOW) u = inflow_profile(u_max, mesh.xy[2 * n + 1]), v = 0;
                vel[(t * nn + n) * 2] = (float)u, vel[(t * nn + n) * 2 + 1] = (float)v;
                pre[t * nn + n] = (float)pr;
            }
        }
        free(rho), free(ux), free(uy), free(st);
        ts_lbm_free(m);
        if (bad) {
            snprintf(err, cap,
                     "trajectory %zu (%s, Re %.0f): the lattice-Boltzmann solution became unstable; raise "
                     "synth_mesh.lattice (now %zu) or lower synth_mesh.re_max",
                     traj, ts_obstacle_name(s.shape.kind), s.re, o->lattice);
            free(vel), free(pre), ts_tri_mesh_free(&mesh);
            return ts_mesh_writer_abandon(w), -1;
        }
        float *pos = ts_malloc(nn * 2 * sizeof *pos);
        for (size_t k = 0; k < 2 * nn; k++) pos[k] = (float)mesh.xy[k];
        int rc = ts_mesh_writer_add(w, nn, mesh.cells, pos, mesh.tri, mesh.node_type, vel, pre, err, cap);
        free(pos), free(vel), free(pre);
        size_t nodes = mesh.nodes;
        ts_tri_mesh_free(&mesh);
        if (rc) return ts_mesh_writer_abandon(w), -1;
        double now = ts_now(), per = (now - t_start) / (double)(traj + 1);
        ts_info("synth-mesh: trajectory %zu/%zu (%s, Re %.0f, mean inflow %.2f, %zu nodes, lattice %zux%zu, tau %.4f) "
                "in %.1f s, ETA %.0f s",
                traj + 1, o->trajectories, ts_obstacle_name(s.shape.kind), s.re, s.u_mean, nodes, p.nx, p.ny, p.tau,
                now - t0, per * (double)(o->trajectories - traj - 1));
    }
    return ts_mesh_writer_finish(w, err, cap);
}
