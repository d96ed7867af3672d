#include "parallel/roll.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parallel/mpi_env.h"

/* Strip volume of one call, per rank.
 *
 * Forward output point (i, j) of rank (py, px) comes from global row
 * py*h + i + sy and column px*w + j + sx (cyclic). Since 0 <= sy < h, the row
 * lies in this rank's block row for i < h - sy and in the next one (py+1)
 * for the last sy rows; likewise the column lies in this block column for
 * j < w - sx and in the next (px+1) for the last sx columns. So the output
 * splits into four rectangles by owner:
 *
 *   (h-sy) x (w-sx)  from (py,   px  )  itself
 *   sy     x (w-sx)  from (py+1, px  )  row strip
 *   (h-sy) x sx      from (py,   px+1)  column strip
 *   sy     x sx      from (py+1, px+1)  corner
 *
 * Coordinates are taken mod (wp_y, wp_x), so (py+1, px) is another rank iff
 * wp_y > 1, (py, px+1) iff wp_x > 1, and (py+1, px+1) iff either is. Every
 * rank receives these and, by the same argument read backwards, sends the
 * same shapes to (py-1, px), (py, px-1), (py-1, px-1). Backward swaps the
 * directions and keeps the shapes. Hence bytes sent per rank per call:
 *
 *   4*C * ( [wp_y>1] sy*(w-sx) + [wp_x>1] (h-sy)*sx + [wp_y>1 or wp_x>1] sy*sx )
 *
 * which is 4*C*sy*w for a column of ranks, 4*C*h*sx for a row of ranks, and
 * 4*C*(h*w - (h-sy)*(w-sx)) -- all but the part that stays -- for a 2-d grid.
 */
size_t ts_roll_expected_bytes(int h, int w, int C, int sy, int sx, int wp_y, int wp_x) {
    size_t points = 0;
    if (wp_y > 1) points += (size_t)sy * (size_t)(w - sx);
    if (wp_x > 1) points += (size_t)(h - sy) * (size_t)sx;
    if (wp_y > 1 || wp_x > 1) points += (size_t)sy * (size_t)sx;
    return points * (size_t)C * sizeof(float);
}

static int roll_check_args(int h, int w, int C, int sy, int sx, char *err, size_t cap) {
    if (h < 1 || w < 1 || C < 1) {
        return TS_FAIL(err, cap, "roll: block %d x %d x %d must have at least 1 row, column and channel", h, w, C);
    }
    if (sy < 0 || sy >= h || sx < 0 || sx >= w) {
        return TS_FAIL(err, cap, "roll: shift (%d, %d) must lie in [0, %d) x [0, %d), within one block", sy, sx, h, w);
    }
    /* Message counts are MPI ints; a strip is never larger than the block. */
    if ((size_t)h * (size_t)w * (size_t)C > (size_t)INT_MAX) {
        return TS_FAIL(err, cap, "roll: block %d x %d x %d exceeds %d floats", h, w, C, INT_MAX);
    }
    return 0;
}

/* Every rank must roll the same shapes, or the messages would not match
 * (a hang, not an error). One all-reduce of the values and their negations
 * gives the minimum and maximum of each at once. */
static int roll_check_agree(MPI_Comm comm, int ok, const int shape[5], char *err, size_t cap) {
    int v[12], r[12];
    v[0] = ok, v[6] = -ok;
    for (int k = 0; k < 5; k++) v[1 + k] = shape[k], v[7 + k] = -shape[k];
    TS_MPI_CHECK(MPI_Allreduce(v, r, 12, MPI_INT, MPI_MIN, comm));
    if (r[0] != 1) {
        if (ok) snprintf(err, cap, "roll: another rank refused its arguments");
        return -1;
    }
    for (int k = 1; k < 6; k++)
        if (r[k] != -r[6 + k]) {
            return TS_FAIL(err, cap, "roll: ranks disagree on block h, w, C, sy, sx (argument %d ranges %d..%d)", k,
                     r[k], -r[6 + k]);
        }
    return 0;
}

/* Rank at this rank's coordinates plus (dy, dx), cyclic on both axes: the
 * topology may not be periodic in latitude, but the roll is. */
static int roll_partner(MPI_Comm comm, const int dims[2], const int coords[2], int dy, int dx) {
    int c[2] = {((coords[0] + dy) % dims[0] + dims[0]) % dims[0], ((coords[1] + dx) % dims[1] + dims[1]) % dims[1]};
    int rank = -1;
    TS_MPI_CHECK(MPI_Cart_rank(comm, c, &rank));
    return rank;
}

/* The four rectangles of the forward roll (see the derivation above) and
 * where their packed strips sit in the send/recv buffers. */
static void roll_pieces(ts_roll_plan *p, const int dims[2], const int coords[2]) {
    const int h = p->h, w = p->w, sy = p->sy, sx = p->sx;
    /* {nr, nc, src_r0, src_c0, dst_r0, dst_c0, dy, dx} */
    const int table[TS_ROLL_PIECES][8] = {
        {h - sy, w - sx, sy, sx, 0, 0, 0, 0},   /* stays on this rank */
        {sy, w - sx, 0, sx, h - sy, 0, 1, 0},   /* row strip from below */
        {h - sy, sx, sy, 0, 0, w - sx, 0, 1},   /* column strip from the east */
        {sy, sx, 0, 0, h - sy, w - sx, 1, 1},   /* corner from the diagonal */
    };
    size_t offset = 0;
    for (int k = 0; k < TS_ROLL_PIECES; k++) {
        const int *t = table[k];
        ts_roll_piece *q = &p->piece[k];
        *q = (ts_roll_piece){.nr = t[0], .nc = t[1], .src_r0 = t[2], .src_c0 = t[3], .dst_r0 = t[4],
                             .dst_c0 = t[5], .offset = 0};
        q->from = roll_partner(p->comm, dims, coords, t[6], t[7]);
        q->to = roll_partner(p->comm, dims, coords, -t[6], -t[7]);
        /* (dy, dx) is 0 mod dims exactly when (-dy, -dx) is: both partners
         * are remote or neither is. */
        if (q->to != p->rank) {
            q->offset = offset;
            offset += (size_t)q->nr * (size_t)q->nc * (size_t)p->C;
        }
    }
    p->strip_floats = offset;
}

int ts_roll_plan_create(ts_roll_plan *plan, MPI_Comm comm, int h, int w, int C, int sy, int sx, char *err,
                        size_t cap) {
    memset(plan, 0, sizeof *plan);
    plan->comm = MPI_COMM_NULL;
    /* The topology is a property of comm, the same on every rank, so this
     * early return is taken by all ranks or none. */
    int topo = MPI_UNDEFINED, ndims = 0;
    TS_MPI_CHECK(MPI_Topo_test(comm, &topo));
    if (topo == MPI_CART) TS_MPI_CHECK(MPI_Cartdim_get(comm, &ndims));
    if (topo != MPI_CART || ndims != 2) {
        return TS_FAIL(err, cap, "roll: the communicator needs a 2-d Cartesian topology (WP_y x WP_x), like the layout's wp");
    }
    int ok = roll_check_args(h, w, C, sy, sx, err, cap) == 0;
    if (roll_check_agree(comm, ok, (const int[5]){h, w, C, sy, sx}, err, cap)) return -1;

    int dims[2], periods[2], coords[2];
    TS_MPI_CHECK(MPI_Cart_get(comm, 2, dims, periods, coords));
    /* A private duplicate (it keeps the topology): the roll's tags can never
     * match messages the caller exchanges on the same ranks. */
    TS_MPI_CHECK(MPI_Comm_dup(comm, &plan->comm));
    TS_MPI_CHECK(MPI_Comm_set_errhandler(plan->comm, MPI_ERRORS_RETURN));
    TS_MPI_CHECK(MPI_Comm_rank(plan->comm, &plan->rank));
    plan->h = h, plan->w = w, plan->C = C, plan->sy = sy, plan->sx = sx;
    plan->wp_y = dims[0], plan->wp_x = dims[1];
    roll_pieces(plan, dims, coords);
    if (plan->strip_floats) {
        plan->send = ts_malloc(sizeof(float) * plan->strip_floats);
        plan->recv = ts_malloc(sizeof(float) * plan->strip_floats);
    }
    return 0;
}

void ts_roll_plan_free(ts_roll_plan *plan) {
    free(plan->send);
    free(plan->recv);
    if (plan->comm != MPI_COMM_NULL) TS_MPI_CHECK(MPI_Comm_free(&plan->comm));
    memset(plan, 0, sizeof *plan);
    plan->comm = MPI_COMM_NULL;
}

/* A piece as one direction moves it: backward is forward run in reverse,
 * so sources and destinations, senders and receivers swap. */
typedef struct {
    int nr, nc, src_r0, src_c0, dst_r0, dst_c0, to, from;
    size_t offset;
} roll_move;

static roll_move roll_orient(const ts_roll_piece *q, int backward) {
    if (!backward)
        return (roll_move){q->nr, q->nc, q->src_r0, q->src_c0, q->dst_r0, q->dst_c0, q->to, q->from, q->offset};
    return (roll_move){q->nr, q->nc, q->dst_r0, q->dst_c0, q->src_r0, q->src_c0, q->from, q->to, q->offset};
}

/* Copy nr x nc points of C floats; strides are in floats between rows
 * (w*C inside a block, nc*C in a packed strip). */
static void copy_rect(float *dst, size_t dst_stride, const float *src, size_t src_stride, int nr, int nc, int C) {
    const size_t row = (size_t)nc * (size_t)C;
    for (int r = 0; r < nr; r++) memcpy(dst + (size_t)r * dst_stride, src + (size_t)r * src_stride, sizeof(float) * row);
}

static size_t block_at(const ts_roll_plan *p, int r0, int c0) {
    return ((size_t)r0 * (size_t)p->w + (size_t)c0) * (size_t)p->C;
}

static int roll_is_remote(const ts_roll_plan *p, const roll_move *m) {
    return m->to != p->rank && m->nr > 0 && m->nc > 0;
}

/* Tags tell apart pieces between the same two ranks (east and west are one
 * rank when wp_x == 2) and the two directions. */
static int roll_tag(int piece, int backward) { return backward * TS_ROLL_PIECES + piece; }

static int roll_post_recvs(ts_roll_plan *p, int backward, MPI_Request *req) {
    int n = 0;
    for (int k = 0; k < TS_ROLL_PIECES; k++) {
        roll_move m = roll_orient(&p->piece[k], backward);
        if (!roll_is_remote(p, &m)) continue;
        TS_MPI_CHECK(MPI_Irecv(p->recv + m.offset, m.nr * m.nc * p->C, MPI_FLOAT, m.from, roll_tag(k, backward),
                               p->comm, &req[n++]));
    }
    return n;
}

static int roll_post_sends(ts_roll_plan *p, int backward, const float *in, MPI_Request *req) {
    int n = 0;
    for (int k = 0; k < TS_ROLL_PIECES; k++) {
        roll_move m = roll_orient(&p->piece[k], backward);
        if (!roll_is_remote(p, &m)) continue;
        float *buf = p->send + m.offset; /* (nr, nc, C) */
        copy_rect(buf, (size_t)m.nc * p->C, in + block_at(p, m.src_r0, m.src_c0), (size_t)p->w * p->C, m.nr, m.nc,
                  p->C);
        int count = m.nr * m.nc * p->C;
        TS_MPI_CHECK(MPI_Isend(buf, count, MPI_FLOAT, m.to, roll_tag(k, backward), p->comm, &req[n++]));
        p->bytes_last += sizeof(float) * (size_t)count;
        p->messages_last++;
    }
    return n;
}

static void roll_copy_local(const ts_roll_plan *p, int backward, const float *in, float *out) {
    for (int k = 0; k < TS_ROLL_PIECES; k++) {
        roll_move m = roll_orient(&p->piece[k], backward);
        if (m.to != p->rank) continue;
        copy_rect(out + block_at(p, m.dst_r0, m.dst_c0), (size_t)p->w * p->C, in + block_at(p, m.src_r0, m.src_c0),
                  (size_t)p->w * p->C, m.nr, m.nc, p->C);
    }
}

static void roll_unpack(const ts_roll_plan *p, int backward, float *out) {
    for (int k = 0; k < TS_ROLL_PIECES; k++) {
        roll_move m = roll_orient(&p->piece[k], backward);
        if (!roll_is_remote(p, &m)) continue;
        copy_rect(out + block_at(p, m.dst_r0, m.dst_c0), (size_t)p->w * p->C, p->recv + m.offset,
                  (size_t)m.nc * p->C, m.nr, m.nc, p->C);
    }
}

static void roll_run(ts_roll_plan *p, int backward, const float *in, float *out) {
    if (in == out) ts_fatal("roll: input and output must be distinct buffers");
    MPI_Request req[2 * TS_ROLL_PIECES];
    p->bytes_last = 0, p->messages_last = 0;
    /* Receives are posted before sends so no strip waits in MPI's
     * unexpected-message queue; the local copy overlaps with the messages
     * in flight. */
    int n = roll_post_recvs(p, backward, req);
    n += roll_post_sends(p, backward, in, req + n);
    roll_copy_local(p, backward, in, out);
    TS_MPI_CHECK(MPI_Waitall(n, req, MPI_STATUSES_IGNORE));
    roll_unpack(p, backward, out);
    p->bytes_total += p->bytes_last;
    p->messages_total += p->messages_last;
}

void ts_roll_forward(ts_roll_plan *plan, const float *in, float *out) { roll_run(plan, 0, in, out); }

void ts_roll_backward(ts_roll_plan *plan, const float *in, float *out) { roll_run(plan, 1, in, out); }

size_t ts_roll_fields(ts_roll_plan *plan, const ts_backend *be, int forward, int B, const float *in, float *out,
                      float *const host[2], size_t *expected) {
    const size_t n = (size_t)plan->h * plan->w * (size_t)plan->C;
    const size_t each = ts_roll_expected_bytes(plan->h, plan->w, plan->C, plan->sy, plan->sx, plan->wp_y, plan->wp_x);
    size_t sent = 0;
    if (host[0]) be->sync();
    for (int b = 0; b < B; b++) {
        const float *src = in + (size_t)b * n;
        float *dst = out + (size_t)b * n;
        if (host[0]) {
            be->download(host[0], src, sizeof(float) * n);
            src = host[0], dst = host[1];
        }
        if (forward)
            ts_roll_forward(plan, src, dst);
        else
            ts_roll_backward(plan, src, dst);
        if (host[0]) be->upload(out + (size_t)b * n, host[1], sizeof(float) * n);
        sent += plan->bytes_last, *expected += each;
    }
    return sent;
}
