/* Mesh trajectories in the graph-physics / MeshGraphNets HDF5 layout
 * (docs/mesh-data.md), written by tessera synth-mesh and read by the mesh
 * trainer.
 *
 *   PATH.h5    one group per trajectory, "0", "1", ...; in each, with
 *              D = 2 (triangles) or 3 (tetrahedra):
 *                mesh_pos  (N, D) float32     cells (F, D + 1) int32
 *                node_type (N, 1) int32       velocity (T, N, D) float32
 *                pressure  (T, N, 1) float32
 *   PATH.json  the meta JSON beside it (same stem): field_names,
 *              features.{name}.{type static|dynamic, shape, dtype},
 *              trajectory_length, dt. Shapes are MeshGraphNets': static
 *              [1, -1, C], dynamic [T, -1, C], -1 the per-trajectory count.
 *
 * The reader also takes datasets as MeshGraphNets and graph-physics deliver
 * them: a folder of train/valid/test files sharing ONE meta.json
 * (ts_mesh_meta_find), statics declared [1, -1, C] or tiled [T, -1, C] and
 * stored (N, C), (1, N, C) or tiled (T, N, C), whatever the meta says; of a
 * tiled static the first step is read (the copies are not compared).
 *
 * The writer builds PATH.h5.part and PATH.json.part and renames them when
 * the last trajectory is in, the .h5 last: a killed run leaves no file under
 * the final name. The reader checks the meta JSON against every trajectory
 * (datasets present, dtypes, shapes, node counts agree, cells name nodes in
 * [0, N), positions finite, node types known) when it opens, and checks
 * dynamic values are finite when it reads them. The meta's shapes decide
 * the dimension: mesh_pos [.., 2] with cells [.., 3], or [.., 3] with
 * [.., 4]; any other pair is refused. Errors: -1 or NULL with one
 * line in err naming the file, the trajectory and the dataset.
 */
#ifndef TESSERA_IO_MESH_FILE_H
#define TESSERA_IO_MESH_FILE_H

#include <stddef.h>
#include <stdint.h>

/* MeshGraphNets node types. */
enum {
    TS_NODE_NORMAL = 0,
    TS_NODE_OBSTACLE = 1,
    TS_NODE_AIRFOIL = 2,
    TS_NODE_HANDLE = 3,
    TS_NODE_INFLOW = 4,
    TS_NODE_OUTFLOW = 5,
    TS_NODE_WALL_BOUNDARY = 6,
    TS_NODE_SIZE = 9
};

/* The meta JSON's path for an HDF5 path: the extension replaced by .json
 * (where the writer puts it). */
void ts_mesh_meta_path(const char *h5_path, char *buf, size_t cap);
/* The meta JSON of an HDF5 path as the reader looks for it: <stem>.json
 * when that exists, else meta.json in the file's folder (one meta for a
 * dataset's train, valid and test files). -1 with one line in err naming
 * both paths when neither exists. */
int ts_mesh_meta_find(const char *h5_path, char *buf, size_t cap, char *err, size_t errcap);

/* Parse and check the text of a meta JSON (NUL-terminated) as the reader
 * does before it opens the HDF5 file; `name` stands for the file in
 * errors. 0, or -1 with one line in err. The fuzzing harness's entry point
 * (tests/fuzz/). */
int ts_mesh_meta_check(const char *text, const char *name, char *err, size_t cap);

/* ---- writer ---------------------------------------------------------------------------------- */

typedef struct ts_mesh_writer ts_mesh_writer;

/* Trajectories of `steps` saved steps `dt` apart on 2-D triangle meshes;
 * history (may be NULL) goes into a root attribute. */
ts_mesh_writer *ts_mesh_writer_create(const char *path, size_t steps, double dt, const char *history, char *err,
                                      size_t cap);
/* The same for meshes of dimension dim: 2 (triangles) or 3 (tetrahedra). */
ts_mesh_writer *ts_mesh_writer_create_dim(const char *path, int dim, size_t steps, double dt, const char *history,
                                          char *err, size_t cap);
/* One trajectory, D the writer's dimension: pos (N, D), tri (F, D + 1)
 * cells, node_type (N), velocity (T, N, D), pressure (T, N). */
int ts_mesh_writer_add(ts_mesh_writer *w, size_t nodes, size_t cells, const float *pos, const int32_t *tri,
                       const int32_t *node_type, const float *velocity, const float *pressure, char *err, size_t cap);
/* Writes the meta JSON and renames both files into place; frees w. */
int ts_mesh_writer_finish(ts_mesh_writer *w, char *err, size_t cap);
/* Removes the partial files; frees w. */
void ts_mesh_writer_abandon(ts_mesh_writer *w);

/* ---- reader ---------------------------------------------------------------------------------- */

typedef struct ts_mesh_file ts_mesh_file;

/* Opens path with the meta JSON ts_mesh_meta_find chooses. */
ts_mesh_file *ts_mesh_file_open(const char *path, char *err, size_t cap);
/* Opens path with the meta JSON at meta_path (NULL or "": as ts_mesh_file_open). */
ts_mesh_file *ts_mesh_file_open_meta(const char *path, const char *meta_path, char *err, size_t cap);
void ts_mesh_file_close(ts_mesh_file *f);

size_t ts_mesh_file_trajectories(const ts_mesh_file *f);
size_t ts_mesh_file_steps(const ts_mesh_file *f); /* trajectory_length */
double ts_mesh_file_dt(const ts_mesh_file *f);
size_t ts_mesh_file_nodes(const ts_mesh_file *f, size_t traj);
size_t ts_mesh_file_cells(const ts_mesh_file *f, size_t traj);
/* The mesh dimension D, the same for every trajectory: 2 (mesh_pos (N, 2),
 * triangle cells) or 3 (mesh_pos (N, 3), tetrahedron cells). */
int ts_mesh_file_dim(const ts_mesh_file *f);
/* Channels of a dynamic field ("velocity" 2, "pressure" 1), or 0 if the
 * file has no such dynamic field. */
size_t ts_mesh_file_channels(const ts_mesh_file *f, const char *field);

/* The static arrays of a trajectory: pos (N, D), tri (F, D + 1),
 * node_type (N), each the first step where the file stores them tiled
 * (T, N, C); any may be NULL. */
int ts_mesh_file_read_static(ts_mesh_file *f, size_t traj, float *pos, int32_t *tri, int32_t *node_type, char *err,
                             size_t cap);
/* Steps [t0, t0 + nt) of a dynamic field into out (nt, N, C). */
int ts_mesh_file_read_steps(ts_mesh_file *f, size_t traj, const char *field, size_t t0, size_t nt, float *out,
                            char *err, size_t cap);

#endif
