/* The checkpoint format's insides, shared by its files (not an API):
 *   checkpoint_h5.c     small HDF5 helpers (errors: io/io_error.h)
 *   checkpoint_write.c  writing: checks of the contents, .part, fsync, rename
 *   checkpoint_read.c   reading: metadata, declared arrays, statistics
 */
#ifndef TESSERA_IO_CHECKPOINT_INTERNAL_H
#define TESSERA_IO_CHECKPOINT_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "io/checkpoint.h"
#include "io/io_error.h"

/* The root attribute `format`: how a tessera checkpoint is told from any
 * other HDF5 file. */
#define CKPT_FORMAT "tessera checkpoint"
#define STATS_GROUP "stats"
#define NORMALIZERS_GROUP "normalizers"

/* Chunks hold at most this many elements (64 MiB of float32): chunking is
 * only there so every array can carry a Fletcher-32 checksum, and HDF5
 * limits a chunk to 4 GiB. */
#define CHUNK_MAX_ELEMENTS ((hsize_t)1 << 24)

/* Variable-length data read by HDF5 is freed by HDF5 (1.12 renamed the call). */
#if H5_VERSION_GE(1, 12, 0)
#define reclaim_vlen(type, space, buf) H5Treclaim((type), (space), H5P_DEFAULT, (buf))
#else
#define reclaim_vlen(type, space, buf) H5Dvlen_reclaim((type), (space), H5P_DEFAULT, (buf))
#endif

/* Which file an error is about, and where its line goes. */
typedef struct {
    const char *path;
    char *err;
    size_t cap;
} ck_where;

/* checkpoint_h5.c */
herr_t ck_close_id(hid_t *id);
int ck_silence_hdf5(const ck_where *w);
void ck_format_shape(char *buf, size_t cap, int ndim, const int64_t *shape);
hid_t ck_string_type(void);
hid_t ck_ordered_gcpl(void);
hid_t ck_strong_close_fapl(void);

/* checkpoint_write.c */
int ck_check_host_block(const ck_where *w, const ts_params *l, const float *block, const char *group);
int ck_check_named(const ck_where *w, const ts_ckpt_named *a, size_t n);

#endif
