/* kernels.h - the table of hot-loop functions, one implementation per ISA.
 *
 * generic.c is the portable level built on the scalar reference in quant.c;
 * x86_*.c / arm_*.c fill the same table with SIMD code, each file compiled
 * with its own flags. cpu.c detects the CPU once and picks the best level
 * (PICOLM_ISA forces a lower one). Every level computes what ggml's CPU
 * backend computes: activations quantized once per product to the weight
 * type's vec_dot_type, then integer block dot products. */
#ifndef PICOLM_KERNELS_H
#define PICOLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../quant.h"

#define PL_MAX_HEAD_DIM 512 /* model.c refuses larger heads */

typedef struct pl_kernels_t {
    const char *name;
    /* x[n] -> xq in format act_type (a vec_dot_type: F32 copies), the same
     * bytes at every level; a block holding a NaN or an Inf gets d = NaN
     * and zero quants (quant.h), so every product it enters is NaN. */
    void (*quantize)(uint32_t act_type, const float *x, void *xq, int n);
    /* For every weight row r < rows and activation column b < nb:
     *   y[b * y_stride + r] = dot(row r of w, column b of xq)
     * rows are row_bytes apart and hold cols weights of `type`; columns of
     * xq (quantized by `quantize` to the type's vec_dot_type) are xq_stride
     * bytes apart. nb = 1 is the matrix-vector product of generation. */
    void (*matmul)(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                   size_t xq_stride, int nb, float *y, size_t y_stride);
    /* out[hd] = softmax(q.K^T * scale) V over cached positions (FP16), as
     * llama.cpp computes it: q rounded to FP16 for the dot products, the
     * normalized probabilities rounded to FP16 before weighting V (this is
     * what makes greedy tokens agree through near-ties). np positions of a
     * batch, nq queries each (the heads of a GQA group) against the same K
     * and V: position p's queries are at q + p * ps, hd floats apart, and
     * see the first n + p positions (causal); out has q's layout. scratch
     * holds nq * np * (n + np - 1) floats (the scores). Each query's result
     * is bit for bit the generic level's. */
    void (*attn)(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                 float scale, float *out, float *scratch);
    void (*f32_to_f16)(const float *src, pl_half *dst, int n);
    /* g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u, with expf.h's
     * exponential: the same bits at every level. */
    void (*swiglu)(float *g, const float *u, int n);
} pl_kernels_t;

/* The active table (chosen once, at the first call). */
const pl_kernels_t *pl_kernels(void);
/* A table by level name, or NULL if this CPU or build lacks it. */
const pl_kernels_t *pl_kernels_by_name(const char *name);
/* Names of the levels this CPU and build support, best last; NULL-terminated. */
const char *const *pl_kernels_available(void);
/* What the CPU offers, for --version and test logs ("x86-64 avx2 fma f16c",
 * "aarch64 neon dotprod", ...), whether or not a level uses it. */
const char *pl_cpu_features(void);

extern const pl_kernels_t pl_kernels_generic;

/* Shared by every level: the generic matmul for types a level leaves to it. */
void pl_matmul_generic(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                       size_t xq_stride, int nb, float *y, size_t y_stride);
/* Attention over a Q8_0 cache (--kv q8): the same two-pass softmax in float. */
void pl_attn_head_q8_0(const float *q, const uint8_t *k, const uint8_t *v, int n, int hd, float scale, float *out,
                       float *scores);
/* The generic attention and FP16 conversion, for levels that keep them. */
void pl_attn_generic(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                     float scale, float *out, float *scratch);
/* attn as a loop over its queries, one(q, ...) for each with its n. */
typedef void (*pl_attn_one_fn)(const float *q, const pl_half *k, const pl_half *v, int n, int hd, float scale,
                               float *out, float *scores);
void pl_attn_each(pl_attn_one_fn one, const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v,
                  int n, int hd, float scale, float *out, float *scores);
void pl_f32_to_f16_generic(const float *src, pl_half *dst, int n);
void pl_swiglu_generic(float *g, const float *u, int n);
/* exp(scores[t] - mx) in place, returning 1 / their sum: the softmax of
 * every level, bit for bit (expf.h). */
float pl_softmax_exp(float *scores, int n, float mx);
void pl_quantize_generic(uint32_t act_type, const float *x, void *xq, int n);

#endif
