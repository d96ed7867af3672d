/* Obstacles of the CFD reference simulator (tessera synth-mesh) and the
 * triangle meshes around them.
 *
 * One shape description serves both sides: the lattice-Boltzmann solver
 * (sim/lbm.h) asks which points are inside it, Gmsh (sim/obstacle_mesh.c)
 * draws the same shape as OpenCASCADE geometry, so the mesh's obstacle
 * nodes lie on the boundary the flow sees.
 */
#ifndef TESSERA_SIM_OBSTACLE_H
#define TESSERA_SIM_OBSTACLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TS_OBSTACLE_CIRCLE = 0,
    TS_OBSTACLE_ELLIPSE = 1,
    TS_OBSTACLE_ROUNDED_RECT = 2,
    TS_OBSTACLE_KINDS = 3
} ts_obstacle_kind;

typedef struct {
    ts_obstacle_kind kind;
    double cx, cy; /* centre */
    double a, b;   /* half extents along the shape's own x and y axes (circle: a = b = radius) */
    double corner; /* corner radius of the rounded rectangle, <= min(a, b) */
    double angle;  /* rotation of the shape's axes, radians counter-clockwise */
} ts_obstacle;

const char *ts_obstacle_name(ts_obstacle_kind kind);

/* 1 when (x, y) is inside or on the shape. */
int ts_obstacle_inside(const ts_obstacle *o, double x, double y);

/* Extent across the flow (along y): the length of the Reynolds number. */
double ts_obstacle_height(const ts_obstacle *o);

/* The same shape with every length multiplied by s (about the origin):
 * physical units to lattice units. */
ts_obstacle ts_obstacle_scaled(const ts_obstacle *o, double s);

/* An unstructured triangle mesh of a channel [0, L] x [0, H] with the
 * obstacle cut out, and MeshGraphNets node types (io/mesh_file.h). */
typedef struct {
    size_t nodes, cells;
    double *xy;         /* (nodes, 2) */
    int32_t *tri;       /* (cells, 3) node indices, counter-clockwise */
    int32_t *node_type; /* (nodes) TS_NODE_* */
} ts_tri_mesh;

/* Mesh with Gmsh (OpenCASCADE kernel, Frontal-Delaunay): triangles of size
 * h far from the obstacle, h / refine on it, growing linearly in between
 * (from 0.1 to 1.5 obstacle heights away). Node
 * types: on x = 0 INFLOW, on x = L OUTFLOW, on y = 0 or H WALL_BOUNDARY
 * (the four corners too: the inflow profile and no-slip agree there, both
 * zero), on the obstacle OBSTACLE, else NORMAL. Gmsh prints nothing.
 * Returns 0, or -1 with one line in err. */
int ts_obstacle_mesh(const ts_obstacle *o, double L, double H, double h, double refine, ts_tri_mesh *m, char *err,
                     size_t cap);
void ts_tri_mesh_free(ts_tri_mesh *m);

#endif
