/* generic.c - the portable kernel level: the scalar reference from quant.c
 * behind the kernel table. Any C11 compiler and CPU. */
#include <math.h>

#include "kernels.h"

static void matvec_generic(uint32_t type, const void *w, size_t row_bytes, const float *x, float *y, int cols,
                           int rows) {
    const pl_type_traits *tr = pl_type_traits_get(type);
    for (int r = 0; r < rows; r++) y[r] = tr->dot((const uint8_t *)w + (size_t)r * row_bytes, x, cols);
}

static void attn_head_generic(const float *q, const pl_half *k, const pl_half *v, int n, int hd, float scale,
                              float *out) {
    float m = -INFINITY, l = 0.0f;
    for (int i = 0; i < hd; i++) out[i] = 0.0f;
    for (int t = 0; t < n; t++) {
        const pl_half *kt = k + (size_t)t * hd, *vt = v + (size_t)t * hd;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += q[i] * pl_half_to_float(kt[i]);
        s *= scale;
        if (s > m) {
            float corr = expf(m - s); /* 0 on the first position */
            l *= corr;
            for (int i = 0; i < hd; i++) out[i] *= corr;
            m = s;
        }
        float p = expf(s - m);
        l += p;
        for (int i = 0; i < hd; i++) out[i] += p * pl_half_to_float(vt[i]);
    }
    float inv = l > 0.0f ? 1.0f / l : 0.0f;
    for (int i = 0; i < hd; i++) out[i] *= inv;
}

static void f32_to_f16_generic(const float *src, pl_half *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = pl_float_to_half(src[i]);
}

const pl_kernels_t pl_kernels_generic = {"generic", matvec_generic, attn_head_generic, f32_to_f16_generic};
