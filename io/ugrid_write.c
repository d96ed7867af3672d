/* The UGRID-1.0 mesh rollout writer: topology, step-by-step fields, resume
 * after a kill and finalize-by-rename. See ugrid_write.h. */
#include "io/ugrid_write.h"

#include <math.h>
#include <netcdf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "io/io_error.h"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "unknown"
#endif

#define FORMAT_VERSION 1
#define FORMAT_ATT "tessera_ugrid_format"
#define COMPLETE_ATT "tessera_complete_steps"

struct ts_ugrid_writer {
    char *path, *part;
    int ncid; /* -1 once closed */
    size_t nnodes, nsteps, nvars, steps_done;
    int *varid;
    unsigned char *written; /* (nvars) of the current step */
    int complete;
};

static char *dup_cat(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *s = ts_malloc(na + nb + 1);
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

static int validate(const ts_ugrid_spec *s, char *err, size_t errcap) {
    if (!s->path || !*s->path) return TS_FAIL(err, errcap, "mesh rollout file: no path given");
    if (s->dim != 2 && s->dim != 3)
        return TS_FAIL(err, errcap, "%s: meshes are 2-D (triangles) or 3-D (tetrahedra), not %d-D", s->path, s->dim);
    if (!s->nnodes || !s->ncells || !s->nsteps || !s->nvars || !s->node_xyz || !s->cells || !s->times || !s->vars ||
        !s->history)
        return TS_FAIL(err, errcap,
                       "%s: nodes, cells, steps, variables, their arrays and the history text must all be given",
                       s->path);
    const size_t per = (size_t)s->dim + 1;
    for (size_t c = 0; c < s->ncells; c++)
        for (size_t k = 0; k < per; k++) {
            int32_t n = s->cells[c * per + k];
            if (n < 0 || (size_t)n >= s->nnodes)
                return TS_FAIL(err, errcap, "%s: cell %zu names node %d, outside 0..%zu", s->path, c, (int)n,
                               s->nnodes - 1);
        }
    for (size_t i = 0; i < s->nsteps; i++)
        if (!isfinite(s->times[i]) || (i && s->times[i] <= s->times[i - 1]))
            return TS_FAIL(err, errcap, "%s: step times must be finite and increase", s->path);
    for (size_t v = 0; v < s->nvars; v++)
        if (!s->vars[v].name || !*s->vars[v].name || !s->vars[v].units || !s->vars[v].long_name)
            return TS_FAIL(err, errcap, "%s: variable %zu needs a name, units and long_name", s->path, v);
    return 0;
}

static int put_text(int ncid, int varid, const char *name, const char *text) {
    return nc_put_att_text(ncid, varid, name, strlen(text), text);
}

/* Define and fill everything but the fields; the file ends synced. */
static int create_file(ts_ugrid_writer *w, const ts_ugrid_spec *s, const char *tmp, char *err, size_t errcap) {
    int nc, d_node, d_cell, d_per, d_time, v;
    const int three = s->dim == 3;
    const char *mesh = three ? "mesh3d" : "mesh2d";
    char name[128], coords[256];
    TS_NC_CHECK(nc_create(tmp, NC_NETCDF4 | NC_CLOBBER, &nc), err, errcap, "%s", tmp);
    w->ncid = nc;
    snprintf(name, sizeof name, "nM%s_node", mesh + 1);
    TS_NC_CHECK(nc_def_dim(nc, name, s->nnodes, &d_node), err, errcap, "%s", tmp);
    snprintf(name, sizeof name, "nM%s_%s", mesh + 1, three ? "volume" : "face");
    TS_NC_CHECK(nc_def_dim(nc, name, s->ncells, &d_cell), err, errcap, "%s", tmp);
    snprintf(name, sizeof name, "nM%s_%s_nodes", mesh + 1, three ? "volume" : "face");
    TS_NC_CHECK(nc_def_dim(nc, name, (size_t)s->dim + 1, &d_per), err, errcap, "%s", tmp);
    TS_NC_CHECK(nc_def_dim(nc, "time", s->nsteps, &d_time), err, errcap, "%s", tmp);

    int topo, vx[3], vcell, vtype = -1, vtime, vshape = -1;
    TS_NC_CHECK(nc_def_var(nc, mesh, NC_INT, 0, NULL, &topo), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, topo, "cf_role", "mesh_topology"), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, topo, "long_name", "Topology data of the mesh"), err, errcap, "%s", tmp);
    int tdim = s->dim;
    TS_NC_CHECK(nc_put_att_int(nc, topo, "topology_dimension", NC_INT, 1, &tdim), err, errcap, "%s", tmp);
    snprintf(coords, sizeof coords, three ? "%s_node_x %s_node_y %s_node_z" : "%s_node_x %s_node_y", mesh, mesh, mesh);
    TS_NC_CHECK(put_text(nc, topo, "node_coordinates", coords), err, errcap, "%s", tmp);
    snprintf(name, sizeof name, three ? "%s_volume_nodes" : "%s_face_nodes", mesh);
    TS_NC_CHECK(put_text(nc, topo, three ? "volume_node_connectivity" : "face_node_connectivity", name), err, errcap,
                "%s", tmp);
    if (three) {
        char shape[128];
        snprintf(shape, sizeof shape, "%s_volume_types", mesh);
        TS_NC_CHECK(put_text(nc, topo, "volume_shape_type", shape), err, errcap, "%s", tmp);
    }
    static const char AXES[3] = {'x', 'y', 'z'};
    for (int a = 0; a < s->dim; a++) {
        char vn[128], ln[128];
        snprintf(vn, sizeof vn, "%s_node_%c", mesh, AXES[a]);
        snprintf(ln, sizeof ln, "%c-coordinate of the mesh nodes", AXES[a]);
        TS_NC_CHECK(nc_def_var(nc, vn, NC_DOUBLE, 1, &d_node, &vx[a]), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vx[a], "long_name", ln), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vx[a], "units", "m"), err, errcap, "%s", tmp);
    }
    int cdims[2] = {d_cell, d_per};
    TS_NC_CHECK(nc_def_var(nc, name, NC_INT, 2, cdims, &vcell), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, vcell, "cf_role", three ? "volume_node_connectivity" : "face_node_connectivity"), err,
                errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, vcell, "long_name", three ? "Nodes of each tetrahedron" : "Nodes of each triangle"), err,
                errcap, "%s", tmp);
    int zero = 0;
    TS_NC_CHECK(nc_put_att_int(nc, vcell, "start_index", NC_INT, 1, &zero), err, errcap, "%s", tmp);
    if (three) {
        char shape[128];
        snprintf(shape, sizeof shape, "%s_volume_types", mesh);
        TS_NC_CHECK(nc_def_var(nc, shape, NC_INT, 1, &d_cell, &vshape), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vshape, "cf_role", "volume_shape_type"), err, errcap, "%s", tmp);
        int tet = 0;
        TS_NC_CHECK(nc_put_att_int(nc, vshape, "flag_values", NC_INT, 1, &tet), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vshape, "flag_meanings", "tetrahedron"), err, errcap, "%s", tmp);
    }
    if (s->node_type) {
        static const int codes[] = {0, 1, 2, 3, 4, 5, 6};
        TS_NC_CHECK(nc_def_var(nc, "node_type", NC_INT, 1, &d_node, &vtype), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vtype, "long_name", "MeshGraphNets node type"), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vtype, "mesh", mesh), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vtype, "location", "node"), err, errcap, "%s", tmp);
        TS_NC_CHECK(nc_put_att_int(nc, vtype, "flag_values", NC_INT, 7, codes), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, vtype, "flag_meanings", "normal obstacle airfoil handle inflow outflow wall_boundary"),
                    err, errcap, "%s", tmp);
    }
    TS_NC_CHECK(nc_def_var(nc, "time", NC_DOUBLE, 1, &d_time, &vtime), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, vtime, "long_name", "simulation time of the step"), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, vtime, "units", s->time_units ? s->time_units : "1"), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, vtime, "axis", "T"), err, errcap, "%s", tmp);

    int fdims[2] = {d_time, d_node};
    size_t chunk[2] = {1, s->nnodes};
    float fill = NAN;
    for (size_t k = 0; k < s->nvars; k++) {
        TS_NC_CHECK(nc_def_var(nc, s->vars[k].name, NC_FLOAT, 2, fdims, &v), err, errcap, "%s", tmp);
        TS_NC_CHECK(nc_def_var_chunking(nc, v, NC_CHUNKED, chunk), err, errcap, "%s", tmp);
        TS_NC_CHECK(nc_def_var_deflate(nc, v, 1, 1, 1), err, errcap, "%s", tmp);
        TS_NC_CHECK(nc_def_var_fill(nc, v, 0, &fill), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, v, "units", s->vars[k].units), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, v, "long_name", s->vars[k].long_name), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, v, "mesh", mesh), err, errcap, "%s", tmp);
        TS_NC_CHECK(put_text(nc, v, "location", "node"), err, errcap, "%s", tmp);
        w->varid[k] = v;
    }
    TS_NC_CHECK(put_text(nc, NC_GLOBAL, "Conventions", "CF-1.8 UGRID-1.0"), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, NC_GLOBAL, "title", s->title ? s->title : "tessera mesh rollout"), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, NC_GLOBAL, "source", "tessera " TESSERA_VERSION), err, errcap, "%s", tmp);
    TS_NC_CHECK(put_text(nc, NC_GLOBAL, "history", s->history), err, errcap, "%s", tmp);
    int version = FORMAT_VERSION, done = 0;
    TS_NC_CHECK(nc_put_att_int(nc, NC_GLOBAL, FORMAT_ATT, NC_INT, 1, &version), err, errcap, "%s", tmp);
    TS_NC_CHECK(nc_put_att_int(nc, NC_GLOBAL, COMPLETE_ATT, NC_INT, 1, &done), err, errcap, "%s", tmp);
    TS_NC_CHECK(nc_enddef(nc), err, errcap, "%s", tmp);

    double *col = ts_malloc(sizeof(double) * s->nnodes);
    for (int a = 0; a < s->dim; a++) {
        for (size_t n = 0; n < s->nnodes; n++) col[n] = s->node_xyz[n * (size_t)s->dim + (size_t)a];
        int rc = nc_put_var_double(nc, vx[a], col);
        if (rc) {
            free(col);
            return TS_FAIL(err, errcap, "%s: %s", tmp, nc_strerror(rc));
        }
    }
    free(col);
    TS_NC_CHECK(nc_put_var_int(nc, vcell, s->cells), err, errcap, "%s", tmp);
    if (vshape >= 0) {
        int *shapes = ts_calloc(s->ncells, sizeof(int));
        int rc = nc_put_var_int(nc, vshape, shapes);
        free(shapes);
        if (rc) return TS_FAIL(err, errcap, "%s: %s", tmp, nc_strerror(rc));
    }
    if (vtype >= 0) TS_NC_CHECK(nc_put_var_int(nc, vtype, s->node_type), err, errcap, "%s", tmp);
    TS_NC_CHECK(nc_put_var_double(nc, vtime, s->times), err, errcap, "%s", tmp);
    TS_NC_CHECK(nc_sync(nc), err, errcap, "%s", tmp);
    return 0;
}

/* Resume path.part when it was written by the same configuration. */
static int resume_file(ts_ugrid_writer *w, const ts_ugrid_spec *s, char *err, size_t errcap) {
    int nc, version = 0, done = 0;
    TS_NC_CHECK(nc_open(w->part, NC_WRITE, &nc), err, errcap, "%s", w->part);
    w->ncid = nc;
    if (nc_get_att_int(nc, NC_GLOBAL, FORMAT_ATT, &version) || version != FORMAT_VERSION)
        return TS_FAIL(err, errcap, "%s: not a tessera mesh rollout of format %d; delete it to start afresh", w->part,
                       FORMAT_VERSION);
    size_t len = 0;
    TS_NC_CHECK(nc_inq_attlen(nc, NC_GLOBAL, "history", &len), err, errcap, "%s", w->part);
    char *hist = ts_malloc(len + 1);
    int rc = nc_get_att_text(nc, NC_GLOBAL, "history", hist);
    hist[len] = 0;
    int same = rc == NC_NOERR && strcmp(hist, s->history) == 0;
    free(hist);
    if (!same)
        return TS_FAIL(err, errcap,
                       "%s was written by another configuration; delete it or use the same settings to resume",
                       w->part);
    for (size_t k = 0; k < s->nvars; k++)
        if (nc_inq_varid(nc, s->vars[k].name, &w->varid[k]))
            return TS_FAIL(err, errcap, "%s: has no variable '%s'; delete it to start afresh", w->part,
                           s->vars[k].name);
    TS_NC_CHECK(nc_get_att_int(nc, NC_GLOBAL, COMPLETE_ATT, &done), err, errcap, "%s", w->part);
    if (done < 0 || (size_t)done > s->nsteps)
        return TS_FAIL(err, errcap, "%s: %s = %d is out of range", w->part, COMPLETE_ATT, done);
    w->steps_done = (size_t)done;
    return 0;
}

static int finish(ts_ugrid_writer *w, char *err, size_t errcap) {
    TS_NC_CHECK(nc_close(w->ncid), err, errcap, "%s", w->part);
    w->ncid = -1;
    if (rename(w->part, w->path)) return TS_FAIL(err, errcap, "cannot rename %s to %s", w->part, w->path);
    w->complete = 1;
    return 0;
}

static void writer_free(ts_ugrid_writer *w) {
    if (!w) return;
    if (w->ncid >= 0) nc_close(w->ncid);
    free(w->path), free(w->part), free(w->varid), free(w->written), free(w);
}

ts_ugrid_writer *ts_ugrid_open(const ts_ugrid_spec *s, char *err, size_t errcap) {
    if (validate(s, err, errcap)) return NULL;
    ts_ugrid_writer *w = ts_calloc(1, sizeof *w);
    w->ncid = -1;
    w->path = dup_cat(s->path, ""), w->part = dup_cat(s->path, ".part");
    w->nnodes = s->nnodes, w->nsteps = s->nsteps, w->nvars = s->nvars;
    w->varid = ts_calloc(s->nvars, sizeof(int));
    w->written = ts_calloc(s->nvars, 1);
    FILE *probe = fopen(w->part, "rb");
    if (probe) {
        fclose(probe);
        if (resume_file(w, s, err, errcap)) goto fail;
        if (w->steps_done == w->nsteps && finish(w, err, errcap)) goto fail;
        return w;
    }
    char *tmp = dup_cat(s->path, ".part.new");
    int rc = create_file(w, s, tmp, err, errcap);
    if (!rc && rename(tmp, w->part)) rc = TS_FAIL(err, errcap, "cannot rename %s to %s", tmp, w->part);
    free(tmp);
    if (rc) goto fail;
    return w;
fail:
    writer_free(w);
    return NULL;
}

size_t ts_ugrid_steps_done(const ts_ugrid_writer *w) { return w->steps_done; }

int ts_ugrid_write(ts_ugrid_writer *w, size_t var, size_t step, const float *values, char *err, size_t errcap) {
    if (w->complete || var >= w->nvars || step != w->steps_done)
        return TS_FAIL(err, errcap, "%s: write of variable %zu at step %zu, but step %zu is the one open", w->part, var,
                       step, w->steps_done);
    size_t start[2] = {step, 0}, count[2] = {1, w->nnodes};
    TS_NC_CHECK(nc_put_vara_float(w->ncid, w->varid[var], start, count, values), err, errcap, "%s", w->part);
    w->written[var] = 1;
    return 0;
}

int ts_ugrid_read(ts_ugrid_writer *w, size_t var, size_t step, float *values, char *err, size_t errcap) {
    if (var >= w->nvars || step >= w->steps_done)
        return TS_FAIL(err, errcap, "%s: read of variable %zu at step %zu, but only %zu steps are complete", w->part,
                       var, step, w->steps_done);
    size_t start[2] = {step, 0}, count[2] = {1, w->nnodes};
    TS_NC_CHECK(nc_get_vara_float(w->ncid, w->varid[var], start, count, values), err, errcap, "%s", w->part);
    return 0;
}

int ts_ugrid_step_complete(ts_ugrid_writer *w, size_t step, char *err, size_t errcap) {
    if (step != w->steps_done) return TS_FAIL(err, errcap, "%s: step %zu completed out of order", w->part, step);
    for (size_t v = 0; v < w->nvars; v++)
        if (!w->written[v])
            return TS_FAIL(err, errcap, "%s: step %zu completed before variable %zu was written", w->part, step, v);
    TS_NC_CHECK(nc_sync(w->ncid), err, errcap, "%s", w->part); /* data first, then the count that vouches for it */
    int done = (int)step + 1;
    TS_NC_CHECK(nc_put_att_int(w->ncid, NC_GLOBAL, COMPLETE_ATT, NC_INT, 1, &done), err, errcap, "%s", w->part);
    TS_NC_CHECK(nc_sync(w->ncid), err, errcap, "%s", w->part);
    w->steps_done = (size_t)done;
    memset(w->written, 0, w->nvars);
    if (w->steps_done == w->nsteps) return finish(w, err, errcap);
    return 0;
}

int ts_ugrid_close(ts_ugrid_writer *w, char *err, size_t errcap) {
    if (!w) return 0;
    int rc = 0;
    if (w->ncid >= 0) {
        int r = nc_close(w->ncid);
        w->ncid = -1;
        if (r) rc = TS_FAIL(err, errcap, "%s: %s", w->part, nc_strerror(r));
    }
    writer_free(w);
    return rc;
}

/* ---- reading complete files ------------------------------------------------------------ */

static int open_complete(const char *path, int *ncid, size_t *nnodes, size_t *nsteps, char *err, size_t errcap) {
    TS_NC_CHECK(nc_open(path, NC_NOWRITE, ncid), err, errcap, "%s", path);
    int nc = *ncid, version = 0, done = 0, dim;
    if (nc_get_att_int(nc, NC_GLOBAL, FORMAT_ATT, &version) || version != FORMAT_VERSION) {
        nc_close(nc);
        return TS_FAIL(err, errcap, "%s: not a tessera mesh rollout of format %d", path, FORMAT_VERSION);
    }
    int rc = nc_inq_dimid(nc, "time", &dim);
    if (!rc) rc = nc_inq_dimlen(nc, dim, nsteps);
    if (!rc) rc = nc_inq_dimid(nc, "nMesh2d_node", &dim);
    if (rc) rc = nc_inq_dimid(nc, "nMesh3d_node", &dim);
    if (!rc) rc = nc_inq_dimlen(nc, dim, nnodes);
    if (!rc) rc = nc_get_att_int(nc, NC_GLOBAL, COMPLETE_ATT, &done);
    if (rc) {
        nc_close(nc);
        return TS_FAIL(err, errcap, "%s: %s", path, nc_strerror(rc));
    }
    if ((size_t)done != *nsteps) {
        nc_close(nc);
        return TS_FAIL(err, errcap, "%s: only %d of %zu steps are complete", path, done, *nsteps);
    }
    return 0;
}

int ts_ugrid_file_sizes(const char *path, size_t *nnodes, size_t *nsteps, char *err, size_t errcap) {
    int nc;
    if (open_complete(path, &nc, nnodes, nsteps, err, errcap)) return -1;
    nc_close(nc);
    return 0;
}

int ts_ugrid_file_read(const char *path, const char *name, size_t step, float *values, char *err, size_t errcap) {
    int nc, var;
    size_t nnodes, nsteps;
    if (open_complete(path, &nc, &nnodes, &nsteps, err, errcap)) return -1;
    if (step >= nsteps) {
        nc_close(nc);
        return TS_FAIL(err, errcap, "%s: step %zu asked of %zu", path, step, nsteps);
    }
    size_t start[2] = {step, 0}, count[2] = {1, nnodes};
    int rc = nc_inq_varid(nc, name, &var);
    if (!rc) rc = nc_get_vara_float(nc, var, start, count, values);
    nc_close(nc);
    if (rc) return TS_FAIL(err, errcap, "%s: variable '%s': %s", path, name, nc_strerror(rc));
    return 0;
}
