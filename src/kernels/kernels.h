/* kernels.h - the table of hot-loop functions, one implementation per ISA.
 *
 * generic.c is the portable level built from the scalar reference in
 * quant.c; x86_*.c / arm_*.c fill the same table with SIMD code, each file
 * compiled with its own flags. cpu.c detects the CPU once and picks the best
 * level (PICOLM_ISA forces a lower one). */
#ifndef PICOLM_KERNELS_H
#define PICOLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../quant.h"

typedef struct pl_kernels_t {
    const char *name;
    /* y[r] = dot(row r of w, x) for r in [0, rows); rows are row_bytes apart,
     * each holding cols weights of the given type. */
    void (*matvec)(uint32_t type, const void *w, size_t row_bytes, const float *x, float *y, int cols, int rows);
    /* out[hd] = softmax(q.K^T * scale) V over n cached positions (FP16). */
    void (*attn_head)(const float *q, const pl_half *k, const pl_half *v, int n, int hd, float scale, float *out);
    void (*f32_to_f16)(const float *src, pl_half *dst, int n);
} pl_kernels_t;

/* The active table (chosen at first use, thread-safe after that). */
const pl_kernels_t *pl_kernels(void);
/* A table by level name, or NULL if this CPU/build lacks it. */
const pl_kernels_t *pl_kernels_by_name(const char *name);

extern const pl_kernels_t pl_kernels_generic;

#endif
