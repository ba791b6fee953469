/* x86_ssse3.c - the SSSE3 level: x86-64 CPUs without AVX2 (Core 2 to Ivy
 * Bridge, Atom/Celeron/Pentium Silver, AMD before Excavator). Built with
 * -mssse3; only called after cpu.c has checked the CPU.
 *
 * 128-bit integer dot products (maddubs/madd, as ggml's SSE paths) for the
 * types that matter on small machines: Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 and
 * IQ4_NL/IQ4_XS (a pshufb codebook lookup), one weight row against one
 * activation column; prefill runs them column by column. Everything else (the other types, activation quantization,
 * attention, FP16 conversion) is the generic level's. The integer sums are
 * exact; only the float accumulation order differs from the scalar
 * reference (tests/test_kernels.c bounds the difference). */
#if defined(__x86_64__) || defined(_M_X64)
#include <string.h>
#include <tmmintrin.h>

#include "kernels.h"

static inline __m128i ld(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

static inline int hsum_i32(__m128i v) {
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}

static inline float hsum_ps(__m128 v) {
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 0x55));
    return _mm_cvtss_f32(v);
}

/* 16 unsigned weights (0..63) times 16 signed activations, pairs summed
 * and scaled: 4 int32 lanes of scale * sum(w * x). */
static inline __m128i dot16(__m128i w, const int8_t *x, int scale) {
    return _mm_madd_epi16(_mm_maddubs_epi16(w, ld(x)), _mm_set1_epi16((short)scale));
}

/* Q4_K and Q5_K (hb: Q5_K's fifth bits, NULL for Q4_K). */
static float dot_q45_K(const uint8_t *w, size_t bs, int nsb, const block_q8_K *y, int five) {
    const __m128i m4 = _mm_set1_epi8(0xf);
    __m128 acc = _mm_setzero_ps();
    float accm = 0.0f;
    for (int i = 0; i < nsb; i++, w += bs) {
        int sc[8], mn[8];
        for (int j = 0; j < 8; j++) get_scale_min_k4(j, w + 4, &sc[j], &mn[j]);
        int summ = 0;
        for (int j = 0; j < 8; j++) summ += mn[j] * (y[i].bsums[2 * j] + y[i].bsums[2 * j + 1]);
        const uint8_t *qs = w + (five ? 48 : 16), *qh = w + 16;
        __m128i hb[2] = {five ? ld(qh) : _mm_setzero_si128(), five ? ld(qh + 16) : _mm_setzero_si128()};
        __m128i sumi = _mm_setzero_si128();
        for (int j = 0; j < 4; j++) { /* 64 weights: sub-blocks 2j (low nibbles) and 2j+1 (high) */
            const int8_t *x = y[i].qs + 64 * j;
            for (int h = 0; h < 2; h++) {
                const __m128i q = ld(qs + 32 * j + 16 * h);
                __m128i lo = _mm_and_si128(q, m4), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m4);
                if (five) {
                    const __m128i b = _mm_set1_epi8(0x10);
                    lo = _mm_or_si128(lo, _mm_and_si128(_mm_slli_epi16(_mm_srli_epi16(hb[h], 2 * j), 4), b));
                    hi = _mm_or_si128(hi, _mm_and_si128(_mm_slli_epi16(_mm_srli_epi16(hb[h], 2 * j + 1), 4), b));
                }
                sumi = _mm_add_epi32(sumi, dot16(lo, x + 16 * h, sc[2 * j]));
                sumi = _mm_add_epi32(sumi, dot16(hi, x + 32 + 16 * h, sc[2 * j + 1]));
            }
        }
        pl_half d[2];
        memcpy(d, w, sizeof d);
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(y[i].d * pl_half_to_float(d[0])), _mm_cvtepi32_ps(sumi)));
        accm += y[i].d * pl_half_to_float(d[1]) * (float)summ;
    }
    return hsum_ps(acc) - accm;
}

/* Q6_K: w = d * scale * (q - 32), q = 4 low bits from ql and 2 from qh. */
static float dot_q6_K(const block_q6_K *b, int nsb, const block_q8_K *y) {
    const __m128i m4 = _mm_set1_epi8(0xf), m3 = _mm_set1_epi8(3);
    float acc = 0.0f;
    for (int i = 0; i < nsb; i++) {
        const int8_t *sc = b[i].scales;
        int off = 0;
        for (int s = 0; s < 16; s++) off += sc[s] * y[i].bsums[s];
        __m128i sumi = _mm_setzero_si128();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b[i].ql + 64 * h, *qh = b[i].qh + 32 * h;
            for (int m = 0; m < 2; m++) { /* 16 of the 32 weights of each run */
                const __m128i l0 = ld(ql + 16 * m), l1 = ld(ql + 32 + 16 * m), hbits = ld(qh + 16 * m);
                const __m128i q[4] = {
                    _mm_or_si128(_mm_and_si128(l0, m4), _mm_slli_epi16(_mm_and_si128(hbits, m3), 4)),
                    _mm_or_si128(_mm_and_si128(l1, m4), _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hbits, 2), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l0, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hbits, 4), m3), 4)),
                    _mm_or_si128(_mm_and_si128(_mm_srli_epi16(l1, 4), m4),
                                 _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(hbits, 6), m3), 4)),
                };
                for (int k = 0; k < 4; k++) /* run k: weights 128h + 32k + 16m .. +15, sub-block 8h + 2k + m */
                    sumi = _mm_add_epi32(sumi, dot16(q[k], y[i].qs + 128 * h + 32 * k + 16 * m, sc[8 * h + 2 * k + m]));
            }
        }
        acc += y[i].d * pl_half_to_float(b[i].d) * (float)(hsum_i32(sumi) - 32 * off);
    }
    return acc;
}

/* Q8_0 / Q4_0 against Q8_0: signed weights, so |w| times x with w's sign. */
static inline __m128i sdot16(__m128i w, __m128i x) {
    return _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(x, w)), _mm_set1_epi16(1));
}

static float dot_q8_0(const block_q8_0 *b, int nb, const block_q8_0 *y) {
    __m128 acc = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m128i s = _mm_add_epi32(sdot16(ld(b[i].qs), ld(y[i].qs)), sdot16(ld(b[i].qs + 16), ld(y[i].qs + 16)));
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(pl_half_to_float(b[i].d) * pl_half_to_float(y[i].d)),
                                         _mm_cvtepi32_ps(s)));
    }
    return hsum_ps(acc);
}

static float dot_q4_0(const block_q4_0 *b, int nb, const block_q8_0 *y) {
    const __m128i m4 = _mm_set1_epi8(0xf), e8 = _mm_set1_epi8(8);
    __m128 acc = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const __m128i q = ld(b[i].qs);
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(q, m4), e8);
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), e8);
        const __m128i s = _mm_add_epi32(sdot16(lo, ld(y[i].qs)), sdot16(hi, ld(y[i].qs + 16)));
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(pl_half_to_float(b[i].d) * pl_half_to_float(y[i].d)),
                                         _mm_cvtepi32_ps(s)));
    }
    return hsum_ps(acc);
}

/* IQ4_NL / IQ4_XS: pshufb looks the nibbles up in the codebook (signed
 * values, |v| <= 127, so the sign trick's pair sums fit maddubs). */
static inline void iq4_lookup(const uint8_t *q, __m128i *lo, __m128i *hi) {
    const __m128i book = ld(pl_iq4nl_values), m4 = _mm_set1_epi8(0xf), v = ld(q);
    *lo = _mm_shuffle_epi8(book, _mm_and_si128(v, m4));
    *hi = _mm_shuffle_epi8(book, _mm_and_si128(_mm_srli_epi16(v, 4), m4));
}

static float dot_iq4_nl(const block_iq4_nl *b, int nb, const block_q8_0 *y) {
    __m128 acc = _mm_setzero_ps();
    for (int i = 0; i < nb; i++) {
        __m128i lo, hi;
        iq4_lookup(b[i].qs, &lo, &hi);
        const __m128i s = _mm_add_epi32(sdot16(lo, ld(y[i].qs)), sdot16(hi, ld(y[i].qs + 16)));
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(pl_half_to_float(b[i].d) * pl_half_to_float(y[i].d)),
                                         _mm_cvtepi32_ps(s)));
    }
    return hsum_ps(acc);
}

/* The sign trick with the sub-block scale in the madd. */
static inline __m128i sdot16s(__m128i w, __m128i x, int scale) {
    return _mm_madd_epi16(_mm_maddubs_epi16(_mm_sign_epi8(w, w), _mm_sign_epi8(x, w)), _mm_set1_epi16((short)scale));
}

static float dot_iq4_xs(const block_iq4_xs *b, int nsb, const block_q8_K *y) {
    __m128 acc = _mm_setzero_ps();
    for (int i = 0; i < nsb; i++) {
        __m128i sumi = _mm_setzero_si128();
        for (int ib = 0; ib < QK_K / 32; ib++) {
            __m128i lo, hi;
            iq4_lookup(b[i].qs + 16 * ib, &lo, &hi);
            const int sc = pl_iq4xs_scale(&b[i], ib);
            sumi = _mm_add_epi32(sumi, sdot16s(lo, ld(y[i].qs + 32 * ib), sc));
            sumi = _mm_add_epi32(sumi, sdot16s(hi, ld(y[i].qs + 32 * ib + 16), sc));
        }
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(pl_half_to_float(b[i].d) * y[i].d), _mm_cvtepi32_ps(sumi)));
    }
    return hsum_ps(acc);
}

static float dot_row(uint32_t type, const uint8_t *w, const uint8_t *x, int cols) {
    switch (type) {
    case PL_TYPE_Q4_K:
        return dot_q45_K(w, sizeof(block_q4_K), cols / QK_K, (const block_q8_K *)x, 0);
    case PL_TYPE_Q5_K:
        return dot_q45_K(w, sizeof(block_q5_K), cols / QK_K, (const block_q8_K *)x, 1);
    case PL_TYPE_Q6_K:
        return dot_q6_K((const block_q6_K *)w, cols / QK_K, (const block_q8_K *)x);
    case PL_TYPE_Q8_0:
        return dot_q8_0((const block_q8_0 *)w, cols / 32, (const block_q8_0 *)x);
    case PL_TYPE_IQ4_NL:
        return dot_iq4_nl((const block_iq4_nl *)w, cols / 32, (const block_q8_0 *)x);
    case PL_TYPE_IQ4_XS:
        return dot_iq4_xs((const block_iq4_xs *)w, cols / QK_K, (const block_q8_K *)x);
    default:
        return dot_q4_0((const block_q4_0 *)w, cols / 32, (const block_q8_0 *)x);
    }
}

static void matmul_ssse3(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                         size_t xq_stride, int nb, float *y, size_t y_stride) {
    if (type != PL_TYPE_Q4_K && type != PL_TYPE_Q5_K && type != PL_TYPE_Q6_K && type != PL_TYPE_Q8_0 &&
        type != PL_TYPE_Q4_0 && type != PL_TYPE_IQ4_NL && type != PL_TYPE_IQ4_XS) {
        pl_matmul_generic(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride);
        return;
    }
    for (int r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * row_bytes;
        for (int b = 0; b < nb; b++)
            y[(size_t)b * y_stride + r] = dot_row(type, row, (const uint8_t *)xq + (size_t)b * xq_stride, cols);
    }
}

const pl_kernels_t pl_kernels_ssse3 = {"ssse3",         pl_quantize_generic,   matmul_ssse3,
                                       pl_attn_generic, pl_f32_to_f16_generic, pl_swiglu_generic};
#else
typedef int pl_x86_ssse3_unused; /* empty translation unit on other CPUs */
#endif
