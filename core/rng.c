#include "core/rng.h"
#include "core/log.h"

#include <math.h>

enum { PHILOX_ROUNDS = 10 };
#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9) /* golden ratio */
#define PHILOX_W1 UINT32_C(0xBB67AE85) /* sqrt(3) - 1 */

void ts_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

ts_rng_key ts_rng_key_make(uint64_t seed, uint32_t purpose) {
    if (seed > TS_RNG_SEED_MAX) ts_fatal("random seed %llu exceeds 2^56 - 1", (unsigned long long)seed);
    if (purpose > 255) ts_fatal("random purpose %u exceeds 255", purpose);
    ts_rng_key key = {{(uint32_t)seed, (uint32_t)((seed >> 32) & 0xFFFFFF) | (purpose << 24)}};
    return key;
}

static inline void block(ts_rng_key key, uint64_t stream, uint64_t b, uint32_t out[4]) {
    uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    ts_philox4x32_10(ctr, key.k, out);
}

/* 24 random bits centred in their interval: never exactly 0 or 1. */
static inline double to_open01(uint32_t u) { return ((double)(u >> 8) + 0.5) * (1.0 / 16777216.0); }

static inline float normal_lane(const uint32_t w[4], int lane) {
    int pair = lane & 2;
    double r = sqrt(-2.0 * log(to_open01(w[pair])));
    double a = 6.283185307179586476925 * to_open01(w[pair + 1]);
    return (float)(lane & 1 ? r * sin(a) : r * cos(a));
}

float ts_rng_uniform1(ts_rng_key key, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    block(key, stream, index >> 2, w);
    return (float)to_open01(w[index & 3]);
}

float ts_rng_normal1(ts_rng_key key, uint64_t stream, uint64_t index) {
    uint32_t w[4];
    block(key, stream, index >> 2, w);
    return normal_lane(w, (int)(index & 3));
}

/* Blocks are the unit of work: each thread takes whole blocks and writes
 * the lanes that fall inside [first, first + n), so every element equals
 * what the *1() functions give, whatever the thread count. */
#define FILL_BLOCKS(LANE_VALUE)                                                   \
    do {                                                                         \
        if (n == 0) return;                                                      \
        uint64_t b0 = first >> 2, b1 = (first + n - 1) >> 2;                     \
        _Pragma("omp parallel for schedule(static)")                             \
        for (uint64_t b = b0; b <= b1; b++) {                                    \
            uint32_t w[4];                                                       \
            block(key, stream, b, w);                                            \
            for (int lane = 0; lane < 4; lane++) {                               \
                uint64_t idx = 4 * b + (uint64_t)lane;                           \
                if (idx >= first && idx < first + n) out[idx - first] = LANE_VALUE; \
            }                                                                    \
        }                                                                        \
    } while (0)

void ts_rng_uniform(ts_rng_key key, uint64_t stream, uint64_t first, size_t n, float *out) {
    FILL_BLOCKS((float)to_open01(w[lane]));
}

void ts_rng_normal(ts_rng_key key, uint64_t stream, uint64_t first, size_t n, float *out) {
    FILL_BLOCKS(normal_lane(w, lane));
}
