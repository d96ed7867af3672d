/* Cyclic roll of a block-distributed field: the window-strip exchange of a
 * shifted layer under window parallelism (DESIGN.md, "Parallel layout").
 *
 * A global H x W field of C floats per point (row-major (H, W, C)) is split
 * over a WP_y x WP_x grid of ranks: rank (py, px) owns the (h, w, C) block of
 * rows [py*h, (py+1)*h) and columns [px*w, (px+1)*w). A shifted layer sees
 * the field rolled by (-sy, -sx), 0 <= sy < h, 0 <= sx < w:
 *
 *   forward:  out(i, j) = field((py*h + i + sy) mod H, (px*w + j + sx) mod W)
 *   backward: out(i, j) = field((py*h + i - sy) mod H, (px*w + j - sx) mod W)
 *
 * Backward is the inverse of forward, and also its adjoint, so the same pair
 * moves activations (forward, then back) and gradients (backward, then
 * forward). Both axes roll cyclically whatever the communicator's
 * periodicity: latitude rows wrapped across a pole are masked by the model,
 * not here.
 *
 * Only the strips move: forward takes sy rows from the rank below
 * (py+1, px), sx columns from the rank to the east (py, px+1) and an sy x sx
 * corner from (py+1, px+1), all cyclic; the rest of the block is a local
 * copy. A partner that is this rank itself is a local copy too, never a
 * message.
 */
#ifndef TESSERA_PARALLEL_ROLL_H
#define TESSERA_PARALLEL_ROLL_H

#include <mpi.h>
#include <stddef.h>

#include "core/backend.h"

/* The block splits into four rectangles: the part that stays, the row strip,
 * the column strip and the corner. */
enum { TS_ROLL_PIECES = 4 };

/* One rectangle as the forward roll moves it (private to roll.c). */
typedef struct {
    int nr, nc;            /* rectangle rows and columns (0 when empty) */
    int src_r0, src_c0;    /* top-left in the forward input block */
    int dst_r0, dst_c0;    /* top-left in the forward output block */
    int to, from;          /* forward: send to / receive from (ranks in comm) */
    size_t offset;         /* floats into send/recv when the partner is remote */
} ts_roll_piece;

typedef struct {
    int h, w, C;           /* block rows, block columns, floats per point */
    int sy, sx;            /* the shift */
    int wp_y, wp_x;        /* rank grid */
    int rank;              /* this rank in comm */
    MPI_Comm comm;         /* private duplicate of the caller's communicator */
    ts_roll_piece piece[TS_ROLL_PIECES];
    float *send, *recv;    /* (strip floats) packed strips to/from other ranks */
    size_t strip_floats;   /* their length */
    /* Traffic this rank sent to other ranks (self-copies not counted). */
    size_t bytes_last, bytes_total;
    size_t messages_last, messages_total;
} ts_roll_plan;

/* Build a plan (collective over comm). comm must carry a 2-d Cartesian
 * topology whose dimensions are (WP_y, WP_x): the layout's `wp`
 * communicator, or one made by MPI_Cart_create. All ranks must pass the same
 * h, w, C, sy, sx. Returns 0, or -1 with err set on every rank (bad sizes,
 * ranks disagreeing, no 2-d topology). */
int ts_roll_plan_create(ts_roll_plan *plan, MPI_Comm comm, int h, int w, int C, int sy, int sx, char *err,
                        size_t cap);
void ts_roll_plan_free(ts_roll_plan *plan);

/* Roll by (-sy, -sx) (collective over the plan's ranks).
 * in, out: (h, w, C), distinct buffers. */
void ts_roll_forward(ts_roll_plan *plan, const float *in, float *out);
/* Roll by (+sy, +sx): the inverse and adjoint of ts_roll_forward. */
void ts_roll_backward(ts_roll_plan *plan, const float *in, float *out);

/* Bytes one rank sends per call (forward or backward alike), for any rank:
 * the row strip sy*(w-sx) when wp_y > 1, the column strip (h-sy)*sx when
 * wp_x > 1, the corner sy*sx unless the grid is 1 x 1; times C*4. See
 * roll.c for the derivation. */
size_t ts_roll_expected_bytes(int h, int w, int C, int sy, int sx, int wp_y, int wp_x);

/* Roll B consecutive fields of the plan's (h, w, C) on backend be, forward
 * or backward; device fields go through host[0] and host[1] (h w C floats
 * each; NULL on the CPU backend: no GPU-aware MPI assumed). Returns the
 * bytes sent; *expected gets their analytic count added. */
size_t ts_roll_fields(ts_roll_plan *plan, const ts_backend *be, int forward, int B, const float *in, float *out,
                      float *const host[2], size_t *expected);

#endif
