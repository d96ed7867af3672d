/* Counter-based random numbers: Philox-4x32-10 (Salmon et al., SC'11).
 *
 * A draw is a pure function of (seed, purpose, stream, index): no state, so
 * the numbers a rank or thread draws depend only on which global elements it
 * owns, never on the rank layout or the thread count. docs/rng.md gives the
 * packing:
 *   key[0]  = seed bits 0..31
 *   key[1]  = seed bits 32..55 | purpose << 24
 *   ctr[0..1] = block index (element index / 4), low word first
 *   ctr[2..3] = stream, low word first
 * Element i of a stream is lane i % 4 of block i / 4.
 */
#ifndef TESSERA_CORE_RNG_H
#define TESSERA_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

/* What a draw is for; each purpose is an independent family of streams. */
typedef enum {
    TS_RNG_TEST = 0,
    TS_RNG_WEIGHT_INIT = 1,
    TS_RNG_DATA_ORDER = 2,
    TS_RNG_DIFFUSION_TIME = 3,
    TS_RNG_TRAIN_NOISE = 4,
    TS_RNG_SAMPLER_NOISE = 5,
    TS_RNG_PERTURBATION = 6,
    TS_RNG_BOOTSTRAP = 7,
    TS_RNG_PUSHFORWARD = 8,
} ts_rng_purpose;

typedef struct {
    uint32_t k[2];
} ts_rng_key;

#define TS_RNG_SEED_MAX ((UINT64_C(1) << 56) - 1)

/* The raw bijection: out = Philox4x32-10(ctr, key). */
void ts_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* seed must be <= TS_RNG_SEED_MAX, purpose < 256 (checked: fatal otherwise). */
ts_rng_key ts_rng_key_make(uint64_t seed, uint32_t purpose);

/* Elements [first, first + n) of a stream:
 * uniform in the open interval (0, 1), with 24 random bits;
 * standard normal by Box-Muller, lanes (0,1) and (2,3) of a block forming
 * the two pairs. Filled in parallel with OpenMP; results do not depend on
 * the thread count. */
void ts_rng_uniform(ts_rng_key key, uint64_t stream, uint64_t first, size_t n, float *out);
void ts_rng_normal(ts_rng_key key, uint64_t stream, uint64_t first, size_t n, float *out);

/* One element (handy outside hot loops). */
float ts_rng_uniform1(ts_rng_key key, uint64_t stream, uint64_t index);
float ts_rng_normal1(ts_rng_key key, uint64_t stream, uint64_t index);

#endif
