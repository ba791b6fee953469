/* cpu.c - picks the kernel level once: the best this CPU and build support,
 * or the one PICOLM_ISA names if the CPU has it (an unknown or unsupported
 * name falls back to the best level). Compiled without ISA flags: only
 * CPUID/XGETBV (x86) or the OS's hardware capabilities (Arm: getauxval on
 * Linux, sysctl on macOS, IsProcessorFeaturePresent on Windows) decide what
 * may run. Nothing here is mutable but the chosen table, set once. */
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
