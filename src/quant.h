/* quant.h - the weight formats: ggml block layouts and per-type traits.
 *
 * quant.c holds the scalar reference for every type: dequantize a row to
 * float, a fused dequantize+dot against a float vector (no intermediate
 * row), and a quantizer (float -> blocks, byte-compatible with ggml's
 * formats; round-to-nearest quality, not llama.cpp's search). The SIMD
 * kernels in src/kernels/ are tested against these. */
#ifndef PICOLM_QUANT_H
#define PICOLM_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* ggml type ids as stored in GGUF files. */
enum pl_type {
    PL_TYPE_F32 = 0, PL_TYPE_F16 = 1, PL_TYPE_Q4_0 = 2, PL_TYPE_Q4_1 = 3,
    PL_TYPE_Q5_0 = 6, PL_TYPE_Q5_1 = 7, PL_TYPE_Q8_0 = 8, PL_TYPE_Q8_1 = 9,
    PL_TYPE_Q2_K = 10, PL_TYPE_Q3_K = 11, PL_TYPE_Q4_K = 12, PL_TYPE_Q5_K = 13,
    PL_TYPE_Q6_K = 14, PL_TYPE_Q8_K = 15, PL_TYPE_IQ4_NL = 20, PL_TYPE_IQ4_XS = 23, PL_TYPE_BF16 = 30,
    PL_TYPE_COUNT = 31
};

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK_K 256
#define QK8_1 32
#define QK4_NL 32
#define K_SCALE_SIZE 12

typedef uint16_t pl_half; /* IEEE binary16 bits */

typedef struct { pl_half d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { pl_half d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { pl_half d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { pl_half d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { pl_half d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct {
    uint8_t scales[QK_K / 16]; /* 4-bit scale | 4-bit min per 16 weights */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    pl_half d, dmin;
} block_q2_K;
typedef struct {
    uint8_t hmask[QK_K / 8]; /* high bit of the 3-bit quants */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 6-bit scales */
    pl_half d;
} block_q3_K;
typedef struct {
    pl_half d, dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 6-bit scales and mins */
    uint8_t qs[QK_K / 2];
} block_q4_K;
typedef struct {
    pl_half d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct {
    uint8_t ql[QK_K / 2];      /* low 4 bits */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];  /* 8-bit scales */
    pl_half d;
} block_q6_K;
/* IQ4_NL / IQ4_XS: 4-bit indices into pl_iq4nl_values (a non-linear
 * codebook), nibbles laid out as Q4_0's per 32 weights. */
typedef struct { pl_half d; uint8_t qs[QK4_NL / 2]; } block_iq4_nl;
typedef struct {
    pl_half d;
    uint16_t scales_h;           /* top 2 bits of the 8 6-bit scales, 2 bits each */
    uint8_t scales_l[QK_K / 64]; /* low 4 bits: sub-block 2j low nibble, 2j+1 high */
    uint8_t qs[QK_K / 2];        /* per 32 weights 16 bytes of nibbles, as IQ4_NL */
} block_iq4_xs;
typedef struct { pl_half d, s; int8_t qs[QK8_0]; } block_q8_1; /* s = d * sum(qs) */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K; /* activations only (never a weight type here) */

typedef struct pl_type_traits {
    const char *name;  /* "Q4_K" ... */
    int blck;          /* weights per block */
    size_t type_size;  /* bytes per block */
    /* n is a multiple of blck in all three */
    void (*to_float)(const void *src, float *dst, int64_t n);
    float (*dot)(const void *w, const float *x, int64_t n); /* sum w[i]*x[i] */
    void (*from_float)(const float *src, void *dst, int64_t n);
    /* The integer path, as ggml's CPU backend runs it: activations are first
     * quantized to vec_dot_type (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1,
     * Q8_K for the K-quants; F32 for F32/F16/BF16, whose dot_q is dot) and
     * dot_q multiplies a weight row by them with integer sums per block. */
    uint32_t vec_dot_type;
    float (*dot_q)(const void *w, const void *xq, int64_t n);
    /* Activations -> this type as ggml's x86 CPU backend quantizes them for
     * dot_q (its type_traits_cpu from_float). Same as from_float (ggml's _ref,
     * what llama-quantize writes) except Q8_0/Q8_1: 127/amax, ties to even. */
    void (*from_float_act)(const float *src, void *dst, int64_t n);
} pl_type_traits;

/* The IQ4_NL/IQ4_XS codebook (ggml's kvalues_iq4nl). */
extern const int8_t pl_iq4nl_values[16];

/* IQ4_XS: the scale of 32-weight sub-block ib (0..7), -32..31. */
static inline int pl_iq4xs_scale(const block_iq4_xs *b, int ib) {
    return (((b->scales_l[ib / 2] >> 4 * (ib % 2)) & 0xf) | (((b->scales_h >> 2 * ib) & 3) << 4)) - 32;
}

/* The ggml name of any type id ("Q4_K", "IQ2_XXS", "MXFP4" ...), supported
 * here or not, for error messages; NULL for an id ggml never assigned. */
const char *pl_type_name(uint32_t type);

/* The activation quantizers' rules for hostile floats, shared by every
 * kernel level so that all of them write the same bytes (quant.c): a block
 * with a NaN or an infinity gets d = NaN (fp16: PL_HALF_NAN) and zero
 * quants; lim/amax that overflows (amax subnormal) is taken as 0. */
#define PL_HALF_NAN ((pl_half)0x7e00)
int pl_act_nonfinite(const float *x, int n);
float pl_act_inv_scale(float lim, float amax);

/* NULL for an unknown or unsupported type id. */
const pl_type_traits *pl_type_traits_get(uint32_t type);
/* Bytes of a row of n weights; 0 if n is not a multiple of the block size
 * or the type is unsupported. */
size_t pl_row_size(uint32_t type, int64_t n);

float pl_half_to_float(pl_half h);
pl_half pl_float_to_half(float f); /* round to nearest even */
float pl_bf16_to_float(uint16_t h);
uint16_t pl_float_to_bf16(float f); /* round to nearest even */

/* Q4_K/Q5_K: 8 6-bit scales and 8 6-bit mins in 12 bytes. Sub-blocks 0..3
 * keep them in the low 6 bits of bytes j (scale) and j+4 (min); sub-blocks
 * 4..7 put their low 4 bits in byte j+4 (scale low nibble, min high nibble)
 * and their top 2 bits in the spare top bits of bytes j-4 and j. */
static inline void get_scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

#endif
