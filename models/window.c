#include "models/window.h"

#include <stdio.h>

#include "core/log.h"

int ts_win_check(const ts_win_geom *g, char *err, size_t cap) {
    if (g->H < 1 || g->W < 1 || g->wy < 1 || g->wx < 1) {
        return TS_FAIL(err, cap, "grid %d x %d and window %d x %d must be positive", g->H, g->W, g->wy, g->wx);
    }
    if (g->H % g->wy || g->W % g->wx) {
        return TS_FAIL(err, cap, "window %d x %d does not divide the grid %d x %d", g->wy, g->wx, g->H, g->W);
    }
    if (g->sy < 0 || g->sy >= g->wy || g->sx < 0 || g->sx >= g->wx) {
        return TS_FAIL(err, cap, "shift (%d, %d) must lie inside the window %d x %d", g->sy, g->sx, g->wy, g->wx);
    }
    return 0;
}

void ts_win_qkv_index(const ts_win_geom *g, int B, int nh, int32_t *idx) {
    const int nW = ts_win_count(g), L = ts_win_size(g), HW = g->H * g->W;
    size_t r = 0;
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < nh; h++)
                for (int w = 0; w < nW; w++)
                    for (int i = 0; i < L; i++) {
                        int t = b * HW + ts_win_token(g, w, i);
                        idx[r++] = (int32_t)(((size_t)t * 3 + s) * nh + h);
                    }
}

void ts_win_out_index(const ts_win_geom *g, int B, int nh, int32_t *idx) {
    const int nW = ts_win_count(g), L = ts_win_size(g), HW = g->H * g->W;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < HW; t++) {
            int w, i;
            ts_win_of_token(g, t, &w, &i);
            for (int h = 0; h < nh; h++)
                idx[((size_t)b * HW + t) * nh + h] = (int32_t)((((size_t)b * nh + h) * nW + w) * L + i);
        }
}

static int row_group_of(const ts_win_geom *g, const uint8_t *row_group, int y) {
    return row_group ? row_group[y] : ts_win_wrapped_row(g, y);
}

void ts_win_mask(const ts_win_geom *g, const uint8_t *row_group, uint8_t *mask) {
    const int nW = ts_win_count(g), L = ts_win_size(g);
    for (int w = 0; w < nW; w++)
        for (int i = 0; i < L; i++) {
            int wi = row_group_of(g, row_group, ts_win_token(g, w, i) / g->W);
            for (int j = 0; j < L; j++) {
                int wj = row_group_of(g, row_group, ts_win_token(g, w, j) / g->W);
                mask[((size_t)w * L + i) * L + j] = (uint8_t)(wi == wj);
            }
        }
}
