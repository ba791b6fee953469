/* cpu.c - picks the kernel level once: the best this CPU and build support,
 * or the one PICOLM_ISA names if the CPU has it (an unknown or unsupported
 * name falls back to the best level). Compiled without ISA flags: only
 * CPUID/XGETBV (x86) or hwcaps (Arm) decide what may run. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

static const char *const *levels(void) {
    static const char *list[4];
    static atomic_int done;
    if (!atomic_load(&done)) {
        int n = 0;
        list[n++] = "generic";
#ifdef PL_X86
        if (has_avx2()) list[n++] = "avx2";
#endif
        list[n] = NULL;
        atomic_store(&done, 1);
    }
    return list;
}

const char *const *pl_kernels_available(void) { return levels(); }

const pl_kernels_t *pl_kernels_by_name(const char *name) {
    const char *const *l = levels();
    for (int i = 0; l[i]; i++) {
        if (strcmp(l[i], name)) continue;
        if (!strcmp(name, "generic")) return &pl_kernels_generic;
#ifdef PL_X86
        if (!strcmp(name, "avx2")) return &pl_kernels_avx2;
#endif
    }
    return NULL;
}

static _Atomic(const pl_kernels_t *) active;

const pl_kernels_t *pl_kernels(void) {
    const pl_kernels_t *k = atomic_load_explicit(&active, memory_order_acquire);
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
    atomic_store_explicit(&active, k, memory_order_release);
    return k;
}

const char *pl_cpu_level(void) { return pl_kernels()->name; }
