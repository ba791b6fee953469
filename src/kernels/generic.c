/* generic.c - the portable kernel level: the scalar reference from quant.c
 * behind the kernel table. Any C11 compiler and CPU. */
#include <math.h>
#include <string.h>

#include "expf.h"
#include "kernels.h"

void pl_quantize_generic(uint32_t act_type, const float *x, void *xq, int n) {
    if (act_type == PL_TYPE_F32) {
        memcpy(xq, x, (size_t)n * sizeof *x);
        return;
    }
    pl_type_traits_get(act_type)->from_float_act(x, xq, n);
}

void pl_matmul_generic(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                       size_t xq_stride, int nb, float *y, size_t y_stride) {
    const pl_type_traits *tr = pl_type_traits_get(type);
    for (int r = 0; r < rows; r++) {
        const void *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int b = 0; b < nb; b++)
            y[(size_t)b * y_stride + r] = tr->dot_q(row, (const uint8_t *)xq + (size_t)b * xq_stride, cols);
    }
}

/* scores[t] = exp(scores[t] - mx) in place; returns 1 / their sum, summed
 * in double as ggml's softmax does (expf.h: the exponential and the order). */
float pl_softmax_exp(float *scores, int n, float mx) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int t = 0; t < n; t++) {
        scores[t] = pl_expf(scores[t] - mx);
        acc[t & 7] += scores[t];
    }
    return (float)(1.0 / pl_sum8(acc));
}

static void attn_one(const float *q, const pl_half *k, const pl_half *v, int n, int hd, float scale, float *out,
                     float *scores) {
    float qh[PL_MAX_HEAD_DIM];
    for (int i = 0; i < hd; i++) qh[i] = pl_half_to_float(pl_float_to_half(q[i]));
    float mx = -INFINITY;
    for (int t = 0; t < n; t++) {
        const pl_half *kt = k + (size_t)t * hd;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += qh[i] * pl_half_to_float(kt[i]); /* products exact in float */
        scores[t] = s * scale;
        if (scores[t] > mx) mx = scores[t];
    }
    float inv = pl_softmax_exp(scores, n, mx);
    for (int i = 0; i < hd; i++) out[i] = 0.0f;
    /* no skipping of p = 0: adding 0 * v leaves a finite sum as it is (a
     * sum that starts at +0 never becomes -0), and a NaN or Inf in V (a
     * hostile cache file) must reach the output */
    for (int t = 0; t < n; t++) {
        float p = pl_half_to_float(pl_float_to_half(scores[t] * inv));
        const pl_half *vt = v + (size_t)t * hd;
        for (int i = 0; i < hd; i++) out[i] += p * pl_half_to_float(vt[i]);
    }
}

void pl_attn_each(pl_attn_one_fn one, const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v,
                  int n, int hd, float scale, float *out, float *scores) {
    for (int p = 0; p < np; p++)
        for (int j = 0; j < nq; j++) {
            size_t o = (size_t)p * ps + (size_t)j * hd;
            one(q + o, k, v, n + p, hd, scale, out + o, scores + (size_t)j * (size_t)(n + p));
        }
}

void pl_attn_generic(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                     float scale, float *out, float *scores) {
    pl_attn_each(attn_one, q, nq, np, ps, k, v, n, hd, scale, out, scores);
}

void pl_attn_head_q8_0(const float *q, const uint8_t *k, const uint8_t *v, int n, int hd, float scale, float *out,
                       float *scores) {
    size_t row = (size_t)hd / QK8_0 * sizeof(block_q8_0);
    float mx = -INFINITY;
    for (int t = 0; t < n; t++) {
        const block_q8_0 *kt = (const block_q8_0 *)(k + (size_t)t * row);
        float s = 0.0f;
        for (int bl = 0; bl < hd / QK8_0; bl++) {
            float d = pl_half_to_float(kt[bl].d), acc = 0.0f;
            for (int i = 0; i < QK8_0; i++) acc += q[bl * QK8_0 + i] * (float)kt[bl].qs[i];
            s += d * acc;
        }
        scores[t] = s * scale;
        if (scores[t] > mx) mx = scores[t];
    }
    float inv = pl_softmax_exp(scores, n, mx);
    for (int i = 0; i < hd; i++) out[i] = 0.0f;
    for (int t = 0; t < n; t++) {
        const block_q8_0 *vt = (const block_q8_0 *)(v + (size_t)t * row);
        float p = scores[t] * inv;
        for (int bl = 0; bl < hd / QK8_0; bl++) {
            float pd = p * pl_half_to_float(vt[bl].d);
            for (int i = 0; i < QK8_0; i++) out[bl * QK8_0 + i] += pd * (float)vt[bl].qs[i];
        }
    }
}

void pl_f32_to_f16_generic(const float *src, pl_half *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = pl_float_to_half(src[i]);
}

void pl_swiglu_generic(float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + pl_expf(-g[i])) * u[i];
}

const pl_kernels_t pl_kernels_generic = {"generic",       pl_quantize_generic,   pl_matmul_generic,
                                         pl_attn_generic, pl_f32_to_f16_generic, pl_swiglu_generic};
