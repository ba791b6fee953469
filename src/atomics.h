/* atomics.h - the few atomic operations the thread pool and the CPU dispatch
 * need, as small inline wrappers: C11 <stdatomic.h> where the compiler has
 * it, Interlocked intrinsics under MSVC (whose <stdatomic.h> needs
 * /experimental:c11atomics and a recent Visual Studio). Defining
 * PL_INTERLOCKED selects the MSVC path on any Windows compiler, which is how
 * the mingw-w64 build run under wine tests it.
 *
 * Loads are acquire, stores and read-modify-writes at least release. */
#ifndef PICOLM_ATOMICS_H
#define PICOLM_ATOMICS_H

#if defined(_MSC_VER) || defined(PL_INTERLOCKED)
#include <intrin.h>

typedef volatile long pl_atomic_int;
typedef void *volatile pl_atomic_ptr;

/* An aligned load is atomic; the barrier keeps later accesses after it
 * (x86 orders loads already: only the compiler must be stopped; Arm needs
 * a real barrier, MSVC's /volatile:iso default on Arm gives none). */
#if defined(_M_ARM64) || defined(_M_ARM)
#define PL_ACQUIRE_FENCE() __dmb(0xB) /* _ARM64_BARRIER_ISH */
#else
#define PL_ACQUIRE_FENCE() _ReadWriteBarrier()
#endif

static inline int pl_atomic_load(pl_atomic_int *p) {
    long v = *p;
    PL_ACQUIRE_FENCE();
    return (int)v;
}
static inline void pl_atomic_store(pl_atomic_int *p, int v) { _InterlockedExchange(p, v); }
/* Returns the old value. */
static inline int pl_atomic_add(pl_atomic_int *p, int v) { return (int)_InterlockedExchangeAdd(p, v); }
/* If *p == *expected, store desired and return 1; else load *p into *expected, return 0. */
static inline int pl_atomic_cas(pl_atomic_int *p, int *expected, int desired) {
    long old = _InterlockedCompareExchange(p, desired, *expected);
    if (old == *expected) return 1;
    *expected = (int)old;
    return 0;
}

static inline void *pl_atomic_load_ptr(pl_atomic_ptr *p) {
    void *v = *p;
    PL_ACQUIRE_FENCE();
    return v;
}
static inline void pl_atomic_store_ptr(pl_atomic_ptr *p, void *v) {
#ifdef _WIN64
    _InterlockedExchangePointer(p, v);
#else
    _InterlockedExchange((volatile long *)p, (long)v);
#endif
}

#else
#include <stdatomic.h>

typedef atomic_int pl_atomic_int;
typedef _Atomic(void *) pl_atomic_ptr;

static inline int pl_atomic_load(pl_atomic_int *p) { return atomic_load_explicit(p, memory_order_acquire); }
static inline void pl_atomic_store(pl_atomic_int *p, int v) { atomic_store_explicit(p, v, memory_order_seq_cst); }
static inline int pl_atomic_add(pl_atomic_int *p, int v) {
    return atomic_fetch_add_explicit(p, v, memory_order_acq_rel);
}
static inline int pl_atomic_cas(pl_atomic_int *p, int *expected, int desired) {
    return atomic_compare_exchange_weak_explicit(p, expected, desired, memory_order_acq_rel, memory_order_acquire);
}
static inline void *pl_atomic_load_ptr(pl_atomic_ptr *p) { return atomic_load_explicit(p, memory_order_acquire); }
static inline void pl_atomic_store_ptr(pl_atomic_ptr *p, void *v) {
    atomic_store_explicit(p, v, memory_order_release);
}
#endif

#endif
