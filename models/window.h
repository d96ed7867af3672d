/* Window geometry of the gridded Swin model: which window and which place in
 * it every grid point takes, for plain and shifted layers. All index
 * arithmetic of window attention lives here (NATTEN's habit), shared by the
 * CPU and CUDA paths and tested on its own.
 *
 * A field of one sample is H x W grid points (latitude rows stored north to
 * south, longitude columns), tokens in grid order t = y * W + x. A layer
 * splits the grid into nWy x nWx windows of wy x wx points after shifting it
 * by (sy, sx): window coordinates (Y', X') = ((y - sy) mod H, (x - sx) mod W).
 * Longitude is periodic, so a shifted window that crosses 0/360 degrees is a
 * real neighbourhood. Latitude is not: the last window row of a shifted
 * layer holds both south-most rows (Y' < H - sy) and north-most rows wrapped
 * around the pole (Y' >= H - sy); those two groups never attend to each other
 * (the Swin mask, along latitude only).
 *
 * Window order: window w = wyi * nWx + wxi, place i = iy * wx + ix.
 */
#ifndef TESSERA_MODELS_WINDOW_H
#define TESSERA_MODELS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int H, W;   /* grid rows (latitude) and columns (longitude) */
    int wy, wx; /* window rows and columns; divide H and W */
    int sy, sx; /* shift: 0 for plain layers, (wy/2, wx/2) for shifted ones */
} ts_win_geom;

static inline int ts_win_count(const ts_win_geom *g) { return (g->H / g->wy) * (g->W / g->wx); }
static inline int ts_win_size(const ts_win_geom *g) { return g->wy * g->wx; }

/* Window w and place i of grid token t. */
static inline void ts_win_of_token(const ts_win_geom *g, int t, int *w, int *i) {
    int y = t / g->W, x = t % g->W;
    int Y = (y - g->sy + g->H) % g->H, X = (x - g->sx + g->W) % g->W;
    *w = (Y / g->wy) * (g->W / g->wx) + X / g->wx;
    *i = (Y % g->wy) * g->wx + X % g->wx;
}

/* Grid token at window w, place i (the inverse). */
static inline int ts_win_token(const ts_win_geom *g, int w, int i) {
    int nWx = g->W / g->wx;
    int Y = (w / nWx) * g->wy + i / g->wx, X = (w % nWx) * g->wx + i % g->wx;
    return ((Y + g->sy) % g->H) * g->W + (X + g->sx) % g->W;
}

/* 1 when grid row y was wrapped across the pole by the shift. */
static inline int ts_win_wrapped_row(const ts_win_geom *g, int y) {
    return (y - g->sy + g->H) % g->H >= g->H - g->sy;
}

/* Does the layer need an attention mask (a shift in latitude)? */
static inline int ts_win_needs_mask(const ts_win_geom *g) { return g->sy > 0; }

/* Checks divisibility and shift ranges; returns 0 or -1 with err set. */
int ts_win_check(const ts_win_geom *g, char *err, size_t cap);

/* Gather index from the token-major projection (B*H*W, 3, nh, hd) viewed as
 * rows of hd floats, to the windowed layout (3, B, nh, nW, L, hd):
 * idx has 3 * B * nh * nW * L entries. */
void ts_win_qkv_index(const ts_win_geom *g, int B, int nh, int32_t *idx);
/* Gather index from the windowed output (B, nh, nW, L, hd) back to the
 * token-major (B*H*W, nh, hd): idx has B * H * W * nh entries. */
void ts_win_out_index(const ts_win_geom *g, int B, int nh, int32_t *idx);
/* The (nW * L, L) mask: 1 where place i may attend to place j of the same
 * window, i.e. both rows belong to the same group: row_group[y] when given
 * (a window-parallel rank's block of an already rolled field knows which of
 * its rows came across the pole), else ts_win_wrapped_row. All ones for a
 * layer without a latitude shift and without row groups. */
void ts_win_mask(const ts_win_geom *g, const uint8_t *row_group, uint8_t *mask);

#endif
