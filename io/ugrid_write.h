/* Writing mesh rollouts as NetCDF-4 with UGRID-1.0 topology (REFERENCE.md,
 * "UGRID-1.0 (mesh output)"; docs/ugrid-format.md):
 *
 *   mesh2d                        int, cf_role mesh_topology, topology_dimension 2
 *   mesh2d_node_x(nMesh2d_node)   double, node coordinates (and _y; _z in 3-D)
 *   mesh2d_face_nodes(nMesh2d_face, nMesh2d_face_nodes)  int32, start_index 0
 *   node_type(nMesh2d_node)       int32, MeshGraphNets codes (flag_values)
 *   time(time)                    double, simulation time of each step
 *   velocity_x(time, nMesh2d_node) float32, mesh = "mesh2d", location = "node"
 *
 * A tetrahedral mesh is "mesh3d" with topology_dimension 3,
 * volume_node_connectivity mesh3d_volume_nodes(nMesh3d_volume, 4) and
 * volume_shape_type.
 *
 * As with the forecast writer, the file is path + ".part" until its last
 * step is written, each complete step is synced and counted in the global
 * attribute `tessera_complete_steps`, and opening a spec whose ".part"
 * exists with the same history resumes after its last complete step.
 *
 * Functions return 0 (or a pointer), or -1 (NULL) with one line in err
 * naming the file, the library's message and our file:line.
 */
#ifndef TESSERA_IO_UGRID_WRITE_H
#define TESSERA_IO_UGRID_WRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *name;      /* "velocity_x" */
    const char *units;     /* "m s-1" */
    const char *long_name; /* "velocity, x component" */
} ts_ugrid_var;

typedef struct {
    const char *path;
    int dim;                    /* 2: triangles; 3: tetrahedra */
    size_t nnodes, ncells;
    const double *node_xyz;     /* (nnodes, dim) */
    const int32_t *cells;       /* (ncells, dim + 1), node indices from 0 */
    const int32_t *node_type;   /* (nnodes) or NULL */
    size_t nsteps;
    const double *times;        /* (nsteps) simulation time of each written step, increasing */
    const char *time_units;     /* e.g. "s" */
    size_t nvars;
    const ts_ugrid_var *vars;   /* (nvars) fields on nodes */
    const char *title;          /* global attribute title */
    const char *history;        /* the resolved configuration; a resumed file must match it */
} ts_ugrid_spec;

typedef struct ts_ugrid_writer ts_ugrid_writer;

/* Create path.part or resume it (same sizes and history); a spec whose
 * cells name a node outside [0, nnodes) is an error. */
ts_ugrid_writer *ts_ugrid_open(const ts_ugrid_spec *spec, char *err, size_t errcap);
size_t ts_ugrid_steps_done(const ts_ugrid_writer *w);
/* Write variable var of step `step` (the first incomplete one): (nnodes) values. */
int ts_ugrid_write(ts_ugrid_writer *w, size_t var, size_t step, const float *values, char *err, size_t errcap);
/* Read back variable var of a complete step (resume). */
int ts_ugrid_read(ts_ugrid_writer *w, size_t var, size_t step, float *values, char *err, size_t errcap);
/* Every variable of `step` written: sync and count it; after the last step
 * the file is renamed to its final name. */
int ts_ugrid_step_complete(ts_ugrid_writer *w, size_t step, char *err, size_t errcap);
/* Close and free; an incomplete file stays as path.part. NULL is a no-op. */
int ts_ugrid_close(ts_ugrid_writer *w, char *err, size_t errcap);

/* Reading a complete rollout file (scores): the node and step counts, and
 * variable `name` at step `step` into values (nnodes). A file that is
 * missing, incomplete or lacks the variable is one line in err. */
int ts_ugrid_file_sizes(const char *path, size_t *nnodes, size_t *nsteps, char *err, size_t errcap);
int ts_ugrid_file_read(const char *path, const char *name, size_t step, float *values, char *err, size_t errcap);

#endif
