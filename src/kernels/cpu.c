/* cpu.c - picks the kernel level once: the best this CPU and build support,
 * or the one PICOLM_ISA names if the CPU has it (an unknown or unsupported
 * name falls back to the best level). Compiled without ISA flags: only
 * CPUID/XGETBV (x86) or the OS's hardware capabilities (Arm: getauxval on
 * Linux, sysctl on macOS, IsProcessorFeaturePresent on Windows) decide what
 * may run, plus (x86) a start-up check that the avx512 levels agree with
 * avx2 and a few microseconds' measure of which of the two runs faster on
 * this core. Nothing here is mutable but the chosen table and those
 * results, each set once. */
#include <stdlib.h>
#include <string.h>

#include "../atomics.h"
#include "kernels.h"
#include "picolm.h"

#if defined(__x86_64__) || defined(_M_X64)
#define PL_X86 1
#ifdef _MSC_VER
#include <intrin.h>
#else
#include <cpuid.h>
#endif
extern const pl_kernels_t pl_kernels_avx2;
extern const pl_kernels_t pl_kernels_ssse3;

static void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#ifdef _MSC_VER
    int v[4];
    __cpuidex(v, (int)leaf, (int)sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)v[i];
#else
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

static unsigned long long xgetbv0(void) {
#ifdef _MSC_VER
    return _xgetbv(0);
#else
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
#endif
}

/* SSSE3 (every x86-64 CPU since Core 2, but AMD's before Bulldozer). */
static int has_ssse3(void) {
    unsigned r[4];
    cpuid(1, 0, r);
    return (r[2] >> 9) & 1;
}

/* AVX2 + FMA + F16C, with the OS saving YMM state. */
static int has_avx2(void) {
    unsigned r[4];
    cpuid(0, 0, r);
    if (r[0] < 7) return 0;
    cpuid(1, 0, r);
    int osxsave = (r[2] >> 27) & 1, fma = (r[2] >> 12) & 1, f16c = (r[2] >> 29) & 1, avx = (r[2] >> 28) & 1;
    if (!osxsave || !avx || !fma || !f16c) return 0;
    if ((xgetbv0() & 6) != 6) return 0; /* XMM and YMM state */
    cpuid(7, 0, r);
    return (r[1] >> 5) & 1;
}

#ifdef PL_KERNELS_AVX512
/* The Makefile defines PL_KERNELS_AVX512 when it compiles x86_avx512.c. */
extern const pl_kernels_t pl_kernels_avx512;

/* The avx512 levels' Q4_K, Q6_K and IQ4_XS products (their vpdpbusd
 * tiles: one column, a few and a prefill's many) against the avx2 level's on a
 * small ragged problem: they compute the same integers and must agree bit
 * for bit. The avx512 level was written and tested (its vpdpbusd emulated
 * in AVX2) on machines without AVX-512: where the real instruction
 * disagrees, neither level is offered. */
extern const pl_kernels_t pl_kernels_avx512w;
int pl_avx512_full_width(void);
static int avx512_agrees(void) {
    enum { ROWS = 7, COLS = 512, NB = 18 };
    static const uint32_t types[] = {PL_TYPE_Q4_K, PL_TYPE_Q6_K, PL_TYPE_IQ4_XS};
    static const int nbs[] = {1, 5, NB}; /* one column (mv1_kx), a few (few_kx), a prefill's many */
    uint8_t w[ROWS * 2 * 210], xq[NB * 2 * 292];
    float x[COLS], y1[ROWS * NB], y2[ROWS * NB];
    uint32_t st = 0x9e3779b9u;
    for (int b = 0; b < NB; b++) {
        for (int i = 0; i < COLS; i++) {
            st ^= st << 13, st ^= st >> 17, st ^= st << 5;
            x[i] = (float)(int)(st % 2001) / 1000.0f - 1.0f;
        }
        pl_kernels_generic.quantize(PL_TYPE_Q8_K, x, xq + (size_t)b * pl_row_size(PL_TYPE_Q8_K, COLS), COLS);
    }
    for (int t = 0; t < 3; t++) {
        const size_t rb = pl_row_size(types[t], COLS), bs = rb / (COLS / 256), xs = pl_row_size(PL_TYPE_Q8_K, COLS);
        for (size_t i = 0; i < ROWS * rb; i++) {
            st ^= st << 13, st ^= st >> 17, st ^= st << 5;
            w[i] = (uint8_t)st;
        }
        for (size_t o = 0; o < ROWS * rb; o += bs) { /* finite fp16 scales: 0.0625 */
            size_t d = types[t] == PL_TYPE_Q6_K ? bs - 2 : 0;
            w[o + d] = 0x00, w[o + d + 1] = 0x2c;
            if (types[t] == PL_TYPE_Q4_K) w[o + 2] = 0x00, w[o + 3] = 0x2c;
        }
        for (int i = 0; i < 3; i++) {
            const int nb = nbs[i];
            pl_kernels_avx2.matmul(types[t], w, rb, ROWS, COLS, xq, xs, nb, y1, ROWS);
            pl_kernels_avx512.matmul(types[t], w, rb, ROWS, COLS, xq, xs, nb, y2, ROWS);
            if (memcmp(y1, y2, sizeof(float) * ROWS * nb)) return 0;
            pl_kernels_avx512w.matmul(types[t], w, rb, ROWS, COLS, xq, xs, nb, y2, ROWS);
            if (memcmp(y1, y2, sizeof(float) * ROWS * nb)) return 0;
        }
    }
    return 1;
}

/* AVX-512 F, BW, VL and VNNI, with the OS saving the opmask and ZMM state,
 * and the levels agreeing with avx2; then which of the two this core runs
 * faster (see pl_avx512_full_width). Found once: 0 not yet, 1 no AVX-512,
 * 2 the avx512 level, 3 avx512-wide. */
static int avx512_state(void) {
    static pl_atomic_int known;
    int k = pl_atomic_load(&known);
    if (k) return k;
    unsigned r[4];
    int ok = has_avx2();
    if (ok) {
        cpuid(7, 0, r);
        ok = ((r[1] >> 16) & 1) && ((r[1] >> 30) & 1) && ((r[1] >> 31) & 1) && ((r[2] >> 11) & 1) &&
             (xgetbv0() & 0xe6) == 0xe6;
    }
    if (ok) ok = avx512_agrees();
    k = !ok ? 1 : pl_avx512_full_width() ? 3 : 2;
    pl_atomic_store(&known, k);
    return k;
}
static int has_avx512(void) { return avx512_state() > 1; }
#endif
#endif

#if defined(__aarch64__) || defined(_M_ARM64)
#define PL_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#include <sys/types.h>
#elif defined(_WIN32)
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#ifndef PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE
#define PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE 43
#endif
#endif
/* NEON (Advanced SIMD) is part of the aarch64 baseline; the 8-bit dot
 * products SDOT/UDOT (Armv8.2 FEAT_DotProd: Pi 5, Apple M1, Graviton 2)
 * are optional and asked of the OS. */
static int has_dotprod(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
    int v = 0;
    size_t len = sizeof v;
    return sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) == 0 && v;
#elif defined(_WIN32)
    return IsProcessorFeaturePresent(PF_ARM_V82_DP_INSTRUCTIONS_AVAILABLE) != 0;
#else
    return 0;
#endif
}
/* Hooks for the Arm levels: the Makefile defines PL_KERNELS_NEON when it
 * compiles src/kernels/arm_neon.c (pl_kernels_neon, baseline flags) and
 * PL_KERNELS_DOTPROD for src/kernels/arm_dotprod.c (pl_kernels_dotprod,
 * -march=armv8.2-a+dotprod). */
#ifdef PL_KERNELS_NEON
extern const pl_kernels_t pl_kernels_neon;
#endif
#ifdef PL_KERNELS_DOTPROD
extern const pl_kernels_t pl_kernels_dotprod;
#endif
#endif

#if defined(__arm__) && defined(__linux__)
#define PL_ARM32 1
#include <sys/auxv.h>
#ifndef HWCAP_NEON
#define HWCAP_NEON (1UL << 12)
#endif
/* 32-bit Arm: NEON is optional (the Pi Zero / Pi 1's ARM1176 has none). */
static int has_neon32(void) { return (getauxval(AT_HWCAP) & HWCAP_NEON) != 0; }
#endif

/* The levels this CPU and build support, best last: constant tables, so
 * nothing is initialized at run time. */
static const char *const *levels(void) {
#ifdef PL_X86
    static const char *const avx2[] = {"generic", "ssse3", "avx2", NULL};
    static const char *const ssse3[] = {"generic", "ssse3", NULL};
#ifdef PL_KERNELS_AVX512
    /* both 512-bit levels, the one this core runs faster last */
    static const char *const avx512[] = {"generic", "ssse3", "avx2", "avx512-wide", "avx512", NULL};
    static const char *const avx512w[] = {"generic", "ssse3", "avx2", "avx512", "avx512-wide", NULL};
    if (has_ssse3() && has_avx512()) return avx512_state() == 3 ? avx512w : avx512;
#endif
    if (has_ssse3() && has_avx2()) return avx2;
    if (has_ssse3()) return ssse3;
#endif
#if defined(PL_ARM64) && defined(PL_KERNELS_NEON) && defined(PL_KERNELS_DOTPROD)
    static const char *const dotprod[] = {"generic", "neon", "neon-dotprod", NULL};
    if (has_dotprod()) return dotprod;
#endif
#if defined(PL_ARM64) && defined(PL_KERNELS_NEON)
    static const char *const neon[] = {"generic", "neon", NULL};
    return neon;
#endif
    static const char *const generic[] = {"generic", NULL};
    return generic;
}

const char *const *pl_kernels_available(void) { return levels(); }

const char *pl_cpu_features(void) {
#if defined(PL_X86)
#ifdef PL_KERNELS_AVX512
    if (has_avx512()) return "x86-64 ssse3 avx2 fma f16c avx512f avx512bw avx512vl avx512vnni";
#endif
    return has_avx2() ? "x86-64 ssse3 avx2 fma f16c" : has_ssse3() ? "x86-64 ssse3" : "x86-64";
#elif defined(PL_ARM64)
    return has_dotprod() ? "aarch64 neon dotprod" : "aarch64 neon";
#elif defined(PL_ARM32)
    return has_neon32() ? "arm neon" : "arm";
#elif defined(__riscv)
    return "riscv";
#else
    return "";
#endif
}

const pl_kernels_t *pl_kernels_by_name(const char *name) {
    const char *const *l = levels();
    for (int i = 0; l[i]; i++) {
        if (strcmp(l[i], name)) continue;
        if (!strcmp(name, "generic")) return &pl_kernels_generic;
#ifdef PL_X86
        if (!strcmp(name, "avx2")) return &pl_kernels_avx2;
#ifdef PL_KERNELS_AVX512
        if (!strcmp(name, "avx512")) return &pl_kernels_avx512;
        if (!strcmp(name, "avx512-wide")) return &pl_kernels_avx512w;
#endif
        if (!strcmp(name, "ssse3")) return &pl_kernels_ssse3;
#endif
#ifdef PL_KERNELS_NEON
        if (!strcmp(name, "neon")) return &pl_kernels_neon;
#endif
#ifdef PL_KERNELS_DOTPROD
        if (!strcmp(name, "neon-dotprod")) return &pl_kernels_dotprod;
#endif
    }
    return NULL;
}

static pl_atomic_ptr active; /* const pl_kernels_t *, set once */

const pl_kernels_t *pl_kernels(void) {
    const pl_kernels_t *k = pl_atomic_load_ptr(&active);
    if (k) return k;
    const char *const *l = levels();
    int best = 0;
    while (l[best + 1]) best++;
    k = pl_kernels_by_name(l[best]);
    const char *env = getenv("PICOLM_ISA");
    if (env && *env) {
        const pl_kernels_t *f = pl_kernels_by_name(env);
        if (f) k = f;
    }
    pl_atomic_store_ptr(&active, (void *)k);
    return k;
}

const char *pl_cpu_level(void) { return pl_kernels()->name; }
