/* pool.c - persistent thread pool whose parts are claimed, not assigned.
 *
 * pl_pool_run(fn, arg) calls fn(arg, i, n) once for every part i < n (n =
 * the pool size). A job is published as one 32-bit word (generation << 16 |
 * next part); the caller and the workers claim parts from it with a CAS, so
 * a worker that the OS has descheduled (other processes on a small machine)
 * costs no more than its share: the caller runs the part itself instead of
 * waiting for the worker to wake up. Completion is a count of finished
 * parts. Workers spin for a while between jobs (a token issues ~150 back to
 * back), then sleep on a condition variable; the caller only takes the
 * mutex when someone sleeps. The generation wraps at 16 bits: a stale claim
 * can only succeed on an identical word, whose part belongs to the current
 * job, which is then run correctly.
 *
 * Contexts share pools: pl_pool_acquire(n) hands out the process's one pool
 * of n threads (a list under a mutex, with a reference count), so two
 * contexts never have 2x the threads spinning over the same cores. Runs on
 * a shared pool are serialized by a mutex held across one run: a forward
 * pass is a sequence of runs, so contexts interleave run by run, and the
 * uncontended case (the CLI) pays one lock and unlock per run.
 *
 * Threads are pthreads on POSIX and native Win32 threads (SRW lock +
 * condition variable) on Windows, so neither MSVC nor mingw-w64 needs an
 * extra library; 32-bit atomics only, so 32-bit Arm needs no libatomic. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "pool.h"

#include <stdint.h>
#include <stdlib.h>

#include "atomics.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <process.h>
typedef HANDLE pl_thread;
typedef SRWLOCK pl_mutex;
typedef CONDITION_VARIABLE pl_cond;
#define MUTEX_STATIC_INIT SRWLOCK_INIT
#define mutex_init(m) InitializeSRWLock(m)
#define mutex_destroy(m) ((void)(m)) /* SRW locks need no cleanup */
#define mutex_lock(m) AcquireSRWLockExclusive(m)
#define mutex_unlock(m) ReleaseSRWLockExclusive(m)
#define cond_init(c) InitializeConditionVariable(c)
#define cond_destroy(c) ((void)(c))
#define cond_wait(c, m) SleepConditionVariableSRW(c, m, INFINITE, 0)
#define cond_broadcast(c) WakeAllConditionVariable(c)
#else
#include <pthread.h>
typedef pthread_t pl_thread;
typedef pthread_mutex_t pl_mutex;
typedef pthread_cond_t pl_cond;
#define MUTEX_STATIC_INIT PTHREAD_MUTEX_INITIALIZER
#define mutex_init(m) pthread_mutex_init(m, NULL)
#define mutex_destroy(m) pthread_mutex_destroy(m)
#define mutex_lock(m) pthread_mutex_lock(m)
#define mutex_unlock(m) pthread_mutex_unlock(m)
#define cond_init(c) pthread_cond_init(c, NULL)
#define cond_destroy(c) pthread_cond_destroy(c)
#define cond_wait(c, m) pthread_cond_wait(c, m)
#define cond_broadcast(c) pthread_cond_broadcast(c)
#endif

#define SPIN_ITERS 20000
#define MAX_PARTS 0xFFFF
#define GEN_OF(w) ((unsigned)(w) >> 16)
#define PART_OF(w) ((int)((unsigned)(w) & 0xFFFF))

struct pl_pool {
    int n;
    pl_thread *threads;     /* [n]; slot 0 unused (the caller runs parts too) */
    pl_mutex mu;
    pl_cond cv;
    pl_mutex run_mu;        /* held across one pl_pool_run (n > 1) */
    pl_atomic_int claim;    /* generation << 16 | next unclaimed part */
    pl_atomic_int done;     /* parts of the current job finished */
    pl_atomic_int sleepers; /* workers blocked (or about to block) on cv */
    pl_atomic_int quit;
    unsigned gen;           /* the caller holding run_mu only */
    /* written by the caller before it publishes a job, read only by a
     * thread that has claimed a part of it (the caller cannot move on to
     * the next job until that part is done) */
    pl_task_fn fn;
    void *arg;
    int refs;               /* registry: reg_mu guards refs and next */
    pl_pool *next;
};

static pl_mutex reg_mu = MUTEX_STATIC_INIT;
static pl_pool *reg_pools; /* the pools pl_pool_acquire handed out */

static inline void cpu_relax(void) {
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
    _mm_pause();
#elif defined(_MSC_VER) && (defined(_M_ARM64) || defined(_M_ARM))
    __yield();
#elif defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claim and run parts of job `gen` until none are left. */
static void work(pl_pool *p, unsigned gen) {
    int v = pl_atomic_load(&p->claim);
    for (;;) {
        if (GEN_OF(v) != gen || PART_OF(v) >= p->n) return;
        if (!pl_atomic_cas(&p->claim, &v, v + 1)) continue; /* v was reloaded */
        p->fn(p->arg, PART_OF(v), p->n);
        pl_atomic_add(&p->done, 1);
        v = pl_atomic_load(&p->claim);
    }
}

static void worker_loop(pl_pool *p) {
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = GEN_OF(pl_atomic_load(&p->claim))) == seen && !pl_atomic_load(&p->quit)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            /* sleepers++ before the re-check, the caller's publish before
             * its sleepers check (both full barriers): one sees the other */
            mutex_lock(&p->mu);
            pl_atomic_add(&p->sleepers, 1);
            while (GEN_OF(pl_atomic_load(&p->claim)) == seen && !pl_atomic_load(&p->quit)) cond_wait(&p->cv, &p->mu);
            pl_atomic_add(&p->sleepers, -1);
            mutex_unlock(&p->mu);
            spins = 0;
        }
        if (pl_atomic_load(&p->quit)) return;
        seen = g;
        work(p, g);
    }
}

#ifdef _WIN32
static unsigned __stdcall worker(void *arg) {
    worker_loop(arg);
    return 0;
}
/* _beginthreadex rather than CreateThread: the C runtime sets up its
 * per-thread state for threads it starts. 0 ok. */
static int thread_start(pl_thread *t, pl_pool *p) {
    uintptr_t h = _beginthreadex(NULL, 0, worker, p, 0, NULL);
    *t = (HANDLE)h;
    return h ? 0 : -1;
}
static void thread_join(pl_thread t) {
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
#else
static void *worker(void *arg) {
    worker_loop(arg);
    return NULL;
}
/* The prefill kernels keep ~250 KB of prepared activations on the stack;
 * some libcs (musl: 128 KB) give threads less than that by default. */
#define PL_MIN_STACK ((size_t)1 << 20)
static int thread_start(pl_thread *t, pl_pool *p) {
    pthread_attr_t a;
    size_t sz = 0;
    if (pthread_attr_init(&a)) return -1;
    if (!pthread_attr_getstacksize(&a, &sz) && sz < PL_MIN_STACK) pthread_attr_setstacksize(&a, PL_MIN_STACK);
    int rc = pthread_create(t, &a, worker, p);
    pthread_attr_destroy(&a);
    return rc ? -1 : 0;
}
static void thread_join(pl_thread t) { pthread_join(t, NULL); }
#endif

pl_pool *pl_pool_new(int n) {
    if (n < 1) n = 1;
    if (n > MAX_PARTS) n = MAX_PARTS;
    pl_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    mutex_init(&p->mu);
    cond_init(&p->cv);
    mutex_init(&p->run_mu);
    if (n > 1) {
        p->threads = calloc((size_t)n, sizeof *p->threads);
        if (!p->threads) goto fail;
        for (int i = 1; i < n; i++) {
            if (thread_start(&p->threads[i], p)) {
                p->n = i; /* only threads 1..i-1 exist */
                goto fail;
            }
        }
    }
    return p;
fail:
    pl_pool_free(p);
    return NULL;
}

void pl_pool_free(pl_pool *p) {
    if (!p) return;
    if (p->threads) {
        mutex_lock(&p->mu);
        pl_atomic_store(&p->quit, 1);
        cond_broadcast(&p->cv);
        mutex_unlock(&p->mu);
        for (int i = 1; i < p->n; i++) thread_join(p->threads[i]);
        free(p->threads);
    }
    mutex_destroy(&p->mu);
    cond_destroy(&p->cv);
    mutex_destroy(&p->run_mu);
    free(p);
}

/* Threads are started under reg_mu, so that two contexts created at once
 * cannot both start a pool of the same size. */
pl_pool *pl_pool_acquire(int n) {
    if (n < 1) n = 1;
    if (n > MAX_PARTS) n = MAX_PARTS;
    mutex_lock(&reg_mu);
    pl_pool *p = reg_pools;
    while (p && p->n != n) p = p->next;
    if (p) {
        p->refs++;
    } else if ((p = pl_pool_new(n)) != NULL) {
        p->refs = 1;
        p->next = reg_pools;
        reg_pools = p;
    }
    mutex_unlock(&reg_mu);
    return p;
}

void pl_pool_release(pl_pool *p) {
    if (!p) return;
    mutex_lock(&reg_mu);
    int last = --p->refs == 0;
    if (last) {
        pl_pool **pp = &reg_pools;
        while (*pp != p) pp = &(*pp)->next;
        *pp = p->next;
    }
    mutex_unlock(&reg_mu);
    if (last) pl_pool_free(p); /* joins outside reg_mu: other contexts go on */
}

int pl_pool_count(void) {
    mutex_lock(&reg_mu);
    int k = 0;
    for (const pl_pool *p = reg_pools; p; p = p->next) k++;
    mutex_unlock(&reg_mu);
    return k;
}

int pl_pool_size(const pl_pool *p) { return p ? p->n : 1; }

void pl_pool_run(pl_pool *p, pl_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    mutex_lock(&p->run_mu);
    p->fn = fn;
    p->arg = arg;
    pl_atomic_store(&p->done, 0);
    unsigned g = ++p->gen & 0xFFFF;
    if (g == 0) g = p->gen = 1; /* workers start having "seen" 0 */
    pl_atomic_store(&p->claim, (int)(g << 16)); /* full barrier: publishes fn, arg, done */
    if (pl_atomic_load(&p->sleepers) > 0) {
        mutex_lock(&p->mu);
        cond_broadcast(&p->cv);
        mutex_unlock(&p->mu);
    }
    work(p, g);
    while (pl_atomic_load(&p->done) < p->n) cpu_relax();
    mutex_unlock(&p->run_mu);
}
