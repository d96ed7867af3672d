/* Triangle meshes of the obstacle channel with Gmsh's C API (sim/obstacle.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmshc.h>

#include "core/log.h"
#include "io/mesh_file.h"
#include "sim/obstacle.h"

/* Gmsh reports errors through ierr; this turns one into our error line. */
#define GM(call, what)                                                             \
    do {                                                                           \
        int ierr_ = 0;                                                             \
        call;                                                                      \
        if (ierr_) {                                                               \
            snprintf(err, cap, "Gmsh failed while %s (error %d)", what, ierr_);    \
            goto fail;                                                             \
        }                                                                          \
    } while (0)
#define IERR (&ierr_)

void ts_tri_mesh_free(ts_tri_mesh *m) {
    if (!m) return;
    free(m->xy), free(m->tri), free(m->node_type);
    memset(m, 0, sizeof *m);
}

int ts_obstacle_mesh(const ts_obstacle *o, double L, double H, double h, double refine, ts_tri_mesh *m, char *err,
                     size_t cap) {
    memset(m, 0, sizeof *m);
    size_t *ntags = NULL, nn = 0, *etags = NULL, ne = 0, *enodes = NULL, nen = 0, *otags = NULL, on = 0;
    double *coord = NULL, *pc = NULL, *ocoord = NULL;
    size_t ncoord = 0, npc = 0, nocoord = 0;
    int *out = NULL, **outmap = NULL, *curves = NULL;
    size_t nout = 0, *outmap_n = NULL, noutmap = 0, ncurves = 0;
    int32_t *index = NULL;
    int initialized = 0;
    /* Gmsh prints to the terminal and aborts on errors unless told otherwise;
     * it must not, since our error lines are the only output. */
    GM(gmshInitialize(0, NULL, 0, IERR), "initialising");
    initialized = 1;
    GM(gmshOptionSetNumber("General.Terminal", 0, IERR), "silencing the terminal");
    GM(gmshOptionSetNumber("General.Verbosity", 0, IERR), "silencing messages");
    GM(gmshOptionSetNumber("General.AbortOnError", 0, IERR), "setting AbortOnError");
    GM(gmshModelAdd("channel", IERR), "adding a model");
    int rect = 0, body = 0;
    GM(rect = gmshModelOccAddRectangle(0, 0, 0, L, H, -1, 0, IERR), "adding the channel");
    if (o->kind == TS_OBSTACLE_ROUNDED_RECT) {
        GM(body = gmshModelOccAddRectangle(o->cx - o->a, o->cy - o->b, 0, 2 * o->a, 2 * o->b, -1, o->corner, IERR),
           "adding the rounded rectangle");
    } else {
        /* OpenCASCADE wants the major radius along x: swap and turn by 90 degrees */
        double rx = o->a, ry = o->b, extra = 0;
        if (ry > rx) rx = o->b, ry = o->a, extra = 0.5 * 3.14159265358979323846;
        GM(body = gmshModelOccAddDisk(o->cx, o->cy, 0, rx, ry, -1, IERR), "adding the disk");
        double turn = o->angle + extra;
        int dt[2] = {2, body};
        if (turn != 0) GM(gmshModelOccRotate(dt, 2, o->cx, o->cy, 0, 0, 0, 1, turn, IERR), "rotating the obstacle");
    }
    if (o->kind == TS_OBSTACLE_ROUNDED_RECT && o->angle != 0) {
        int dt[2] = {2, body};
        GM(gmshModelOccRotate(dt, 2, o->cx, o->cy, 0, 0, 0, 1, o->angle, IERR), "rotating the obstacle");
    }
    int obj[2] = {2, rect}, tool[2] = {2, body};
    GM(gmshModelOccCut(obj, 2, tool, 2, &out, &nout, &outmap, &outmap_n, &noutmap, -1, 1, 1, IERR),
       "cutting the obstacle out");
    GM(gmshModelOccSynchronize(IERR), "synchronising");

    /* The obstacle's curves: those whose bounding box is off the outer box. */
    int *dimtags = NULL;
    size_t ndimtags = 0;
    GM(gmshModelGetEntities(&dimtags, &ndimtags, 1, IERR), "listing curves");
    curves = ts_malloc((ndimtags / 2 + 1) * sizeof *curves);
    /* OpenCASCADE pads bounding boxes by its tolerance (~1e-7): compare
     * loosely; the obstacle is never that close to the channel's sides. */
    double tol = 1e-5 * H;
    for (size_t k = 0; k + 1 < ndimtags; k += 2) {
        double x0, y0, z0, x1, y1, z1;
        GM(gmshModelGetBoundingBox(1, dimtags[k + 1], &x0, &y0, &z0, &x1, &y1, &z1, IERR), "bounding a curve");
        int outer = (x1 - x0 < tol && (x0 < tol || x0 > L - tol)) || (y1 - y0 < tol && (y0 < tol || y0 > H - tol));
        if (!outer) curves[ncurves++] = dimtags[k + 1];
    }
    gmshFree(dimtags);
    if (!ncurves) {
        snprintf(err, cap, "Gmsh: no obstacle boundary after cutting the obstacle out");
        goto fail;
    }

    /* Size: h / refine within a tenth of an obstacle height of it, h beyond
     * one and a half (~1.4 k nodes at the defaults; CylinderFlow has ~1.9 k). */
    double d = ts_obstacle_height(o);
    int dist = 0, thr = 0;
    GM(dist = gmshModelMeshFieldAdd("Distance", -1, IERR), "adding a distance field");
    double *cl = ts_malloc(ncurves * sizeof *cl);
    for (size_t k = 0; k < ncurves; k++) cl[k] = curves[k];
    int ierr_cl = 0;
    gmshModelMeshFieldSetNumbers(dist, "CurvesList", cl, ncurves, &ierr_cl);
    free(cl);
    if (ierr_cl) {
        snprintf(err, cap, "Gmsh failed while setting the distance field (error %d)", ierr_cl);
        goto fail;
    }
    GM(gmshModelMeshFieldSetNumber(dist, "Sampling", 200, IERR), "setting the distance sampling");
    GM(thr = gmshModelMeshFieldAdd("Threshold", -1, IERR), "adding a threshold field");
    GM(gmshModelMeshFieldSetNumber(thr, "InField", dist, IERR), "setting the threshold input");
    GM(gmshModelMeshFieldSetNumber(thr, "SizeMin", h / refine, IERR), "setting SizeMin");
    GM(gmshModelMeshFieldSetNumber(thr, "SizeMax", h, IERR), "setting SizeMax");
    GM(gmshModelMeshFieldSetNumber(thr, "DistMin", 0.1 * d, IERR), "setting DistMin");
    GM(gmshModelMeshFieldSetNumber(thr, "DistMax", 1.5 * d, IERR), "setting DistMax");
    GM(gmshModelMeshFieldSetAsBackgroundMesh(thr, IERR), "setting the size field");
    GM(gmshOptionSetNumber("Mesh.MeshSizeExtendFromBoundary", 0, IERR), "setting mesh options");
    GM(gmshOptionSetNumber("Mesh.MeshSizeFromPoints", 0, IERR), "setting mesh options");
    GM(gmshOptionSetNumber("Mesh.MeshSizeFromCurvature", 0, IERR), "setting mesh options");
    GM(gmshOptionSetNumber("Mesh.Algorithm", 6, IERR), "setting mesh options"); /* Frontal-Delaunay */
    GM(gmshModelMeshGenerate(2, IERR), "meshing");

    GM(gmshModelMeshGetNodes(&ntags, &nn, &coord, &ncoord, &pc, &npc, -1, -1, 0, 0, IERR), "reading nodes");
    GM(gmshModelMeshGetElementsByType(2, &etags, &ne, &enodes, &nen, -1, 0, 1, IERR), "reading triangles");
    size_t maxtag = 0;
    for (size_t k = 0; k < nn; k++) maxtag = ntags[k] > maxtag ? ntags[k] : maxtag;
    index = ts_malloc((maxtag + 1) * sizeof *index);
    for (size_t k = 0; k <= maxtag; k++) index[k] = -1;
    /* keep the nodes the triangles use, in Gmsh's order */
    for (size_t k = 0; k < nen; k++) index[enodes[k]] = 0;
    m->xy = ts_malloc(nn * 2 * sizeof *m->xy);
    m->node_type = ts_malloc(nn * sizeof *m->node_type);
    for (size_t k = 0; k < nn; k++) {
        if (index[ntags[k]] < 0) continue;
        size_t i = m->nodes++;
        index[ntags[k]] = (int32_t)i;
        double x = coord[3 * k], y = coord[3 * k + 1];
        m->xy[2 * i] = x, m->xy[2 * i + 1] = y;
        int32_t type = TS_NODE_NORMAL;
        if (y < tol || y > H - tol) type = TS_NODE_WALL_BOUNDARY; /* corners too */
        else if (x < tol) type = TS_NODE_INFLOW;
        else if (x > L - tol) type = TS_NODE_OUTFLOW;
        m->node_type[i] = type;
    }
    for (size_t c = 0; c < ncurves; c++) {
        GM(gmshModelMeshGetNodes(&otags, &on, &ocoord, &nocoord, &pc, &npc, 1, curves[c], 1, 0, IERR),
           "reading obstacle nodes");
        for (size_t k = 0; k < on; k++)
            if (otags[k] <= maxtag && index[otags[k]] >= 0) m->node_type[index[otags[k]]] = TS_NODE_OBSTACLE;
        gmshFree(otags), gmshFree(ocoord), gmshFree(pc);
        otags = NULL, ocoord = NULL, pc = NULL;
    }
    m->cells = ne;
    m->tri = ts_malloc(ne * 3 * sizeof *m->tri);
    for (size_t e = 0; e < ne; e++) {
        int32_t a = index[enodes[3 * e]], b = index[enodes[3 * e + 1]], c = index[enodes[3 * e + 2]];
        double cross = (m->xy[2 * b] - m->xy[2 * a]) * (m->xy[2 * c + 1] - m->xy[2 * a + 1]) -
                       (m->xy[2 * b + 1] - m->xy[2 * a + 1]) * (m->xy[2 * c] - m->xy[2 * a]);
        m->tri[3 * e] = a;
        m->tri[3 * e + 1] = cross >= 0 ? b : c;
        m->tri[3 * e + 2] = cross >= 0 ? c : b;
    }
    gmshFree(ntags), gmshFree(coord), gmshFree(pc), gmshFree(etags), gmshFree(enodes);
    gmshFree(out), gmshFree(outmap_n);
    for (size_t k = 0; k < noutmap; k++) gmshFree(outmap[k]);
    gmshFree(outmap);
    free(curves), free(index);
    int ierr_ = 0;
    gmshFinalize(&ierr_);
    return 0;
fail:
    free(curves), free(index);
    ts_tri_mesh_free(m);
    if (initialized) {
        int ierr_ = 0;
        gmshFinalize(&ierr_);
    }
    return -1;
}
