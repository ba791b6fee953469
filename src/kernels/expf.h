/* expf.h - the exponential of the attention softmax, defined here so that
 * every kernel level computes it bit for bit alike (libm's expf differs
 * between C libraries and cannot be vectorized to match it).
 *
 * e^x = 2^(k/32) * 2^(r/32), with k = round(x * 32/ln2) and |r| <= 1/2, in
 * double: 2^(j/32) from a table, 2^(r/32) as a cubic (relative error below
 * 6e-10, a hundredth of a float ulp), then one rounding to float. Every
 * operation is a separate IEEE double operation (no FMA: SIMD versions use
 * the same sequence, and this file turns contraction off), so the result
 * does not depend on the compiler or the CPU. x is clamped to [-104, 89]
 * (e^-104 rounds to 0 in float, e^89 overflows to inf); NaN stays NaN.
 *
 * The softmax sum is taken in double over 8 interleaved lanes (lane t % 8)
 * closed by a fixed tree, which a vector unit runs in the same order. */
#ifndef PICOLM_EXPF_H
#define PICOLM_EXPF_H

#include <stdint.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

static const double pl_exp2_32[32] = {
    0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0, 0x1.11301d0125b51p+0,
    0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0, 0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0,
    0x1.306fe0a31b715p+0, 0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
    0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0, 0x1.6247eb03a5585p+0,
    0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0, 0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0,
    0x1.8ace5422aa0dbp+0, 0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
    0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0, 0x1.cb720dcef9069p+0,
    0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0, 0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

#define PL_EXP_N_LN2 0x1.71547652b82fep+5 /* 32 / ln 2 */
#define PL_EXP_SHIFT 0x1.8p52             /* adding it rounds to an integer */
#define PL_EXP_C1 0x1.62e42fefa39efp-6    /* ln2 / 32 */
#define PL_EXP_C2 (PL_EXP_C1 * PL_EXP_C1 / 2)
#define PL_EXP_C3 (PL_EXP_C1 * PL_EXP_C1 * PL_EXP_C1 / 6)

static inline float pl_expf(float x) {
    if (x != x) return x;
    double xd = (double)x;
    if (xd < -104.0) xd = -104.0;
    if (xd > 89.0) xd = 89.0;
    double z = xd * PL_EXP_N_LN2;
    double kd = z + PL_EXP_SHIFT;
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd = kd - PL_EXP_SHIFT;
    double r = z - kd;
    uint64_t j = ki & 31, sb;
    memcpy(&sb, &pl_exp2_32[j], sizeof sb);
    sb += (ki - j) << 47; /* 2^((k - j) / 32) into the exponent */
    double s;
    memcpy(&s, &sb, sizeof s);
    double p = PL_EXP_C3 * r;
    p = p + PL_EXP_C2;
    p = p * r;
    p = p + PL_EXP_C1;
    p = p * r;
    p = p + 1.0;
    return (float)(p * s);
}

/* The sum of 8 interleaved partial sums, in a fixed order. */
static inline double pl_sum8(const double a[8]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

#endif
