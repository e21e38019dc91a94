/* "Is any of these 16 floats >= the limit?" as a few vector compares.
 *
 * GCC fully unrolls a fixed 16-step loop before it would vectorise it, so the
 * comparison is written with the compiler's portable vector types (SSE on
 * x86-64, NEON on arm64, whatever the baseline target has); other compilers
 * get the plain loop. */
#ifndef DJANGO_RECS_SCAN_SHIM_H
#define DJANGO_RECS_SCAN_SHIM_H
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
typedef float recs_float4 __attribute__((vector_size(16)));
typedef int recs_int4 __attribute__((vector_size(16)));

static inline int recs_any_at_least16(const float *x, float limit) {
    recs_float4 a, b, c, d;
    recs_float4 l = {limit, limit, limit, limit};
    recs_int4 m;
    memcpy(&a, x, sizeof a);
    memcpy(&b, x + 4, sizeof b);
    memcpy(&c, x + 8, sizeof c);
    memcpy(&d, x + 12, sizeof d);
    m = (a >= l) | (b >= l) | (c >= l) | (d >= l);
    return (m[0] | m[1] | m[2] | m[3]) != 0;
}
#else
static inline int recs_any_at_least16(const float *x, float limit) {
    int hits = 0, k;
    for (k = 0; k < 16; k++) hits |= x[k] >= limit;
    return hits;
}
#endif
#endif
