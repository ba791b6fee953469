/* pool.c - persistent thread pool with a generation-counter barrier.
 *
 * A job is published by bumping `gen`; workers spin on it for a short while
 * (token loops issue jobs back to back, so a sleeping worker would add a
 * wake-up latency to every matrix-vector product) and then block on a
 * condition variable. Completion is a countdown the caller spins on.
 *
 * Threads are pthreads on POSIX and native Win32 threads (SRW lock +
 * condition variable) on Windows, so neither MSVC nor mingw-w64 needs an
 * extra library. This file and platform.c are the only ones in src/ that
 * include OS headers. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "pool.h"

#include <stdlib.h>

#include "atomics.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <process.h>
typedef HANDLE pl_thread;
typedef SRWLOCK pl_mutex;
typedef CONDITION_VARIABLE pl_cond;
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

struct pl_pool {
    int n;
    pl_thread *threads; /* [n]; slot 0 unused (the caller is thread 0) */
    pl_mutex mu;
    pl_cond cv;
    pl_atomic_int gen;     /* job generation (wraps; compared for equality) */
    pl_atomic_int pending; /* workers still running the current job */
    pl_atomic_int quit;
    pl_task_fn fn;
    void *arg;
};

typedef struct { pl_pool *p; int ith; } worker_arg;

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

static void worker_loop(worker_arg *wa) {
    pl_pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    int seen = 0;
    for (;;) {
        int g, spins = 0;
        while ((g = pl_atomic_load(&p->gen)) == seen && !pl_atomic_load(&p->quit)) {
            if (++spins < SPIN_ITERS) {
                cpu_relax();
                continue;
            }
            mutex_lock(&p->mu);
            while (pl_atomic_load(&p->gen) == seen && !pl_atomic_load(&p->quit)) cond_wait(&p->cv, &p->mu);
            mutex_unlock(&p->mu);
        }
        if (pl_atomic_load(&p->quit)) return;
        seen = g;
        p->fn(p->arg, ith, p->n);
        pl_atomic_add(&p->pending, -1);
    }
}

#ifdef _WIN32
static unsigned __stdcall worker(void *arg) {
    worker_loop(arg);
    return 0;
}
/* _beginthreadex rather than CreateThread: the C runtime sets up its
 * per-thread state for threads it starts. 0 ok. */
static int thread_start(pl_thread *t, worker_arg *wa) {
    uintptr_t h = _beginthreadex(NULL, 0, worker, wa, 0, NULL);
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
static int thread_start(pl_thread *t, worker_arg *wa) { return pthread_create(t, NULL, worker, wa) ? -1 : 0; }
static void thread_join(pl_thread t) { pthread_join(t, NULL); }
#endif

pl_pool *pl_pool_new(int n) {
    if (n < 1) n = 1;
    pl_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n;
    mutex_init(&p->mu);
    cond_init(&p->cv);
    if (n > 1) {
        p->threads = calloc((size_t)n, sizeof *p->threads);
        if (!p->threads) goto fail;
        for (int i = 1; i < n; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (!wa) {
                p->n = i; /* only threads 1..i-1 exist */
                goto fail;
            }
            wa->p = p;
            wa->ith = i;
            if (thread_start(&p->threads[i], wa)) {
                free(wa);
                p->n = i;
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
    free(p);
}

int pl_pool_size(const pl_pool *p) { return p ? p->n : 1; }

void pl_pool_run(pl_pool *p, pl_task_fn fn, void *arg) {
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    pl_atomic_store(&p->pending, p->n - 1);
    mutex_lock(&p->mu);
    pl_atomic_add(&p->gen, 1);
    cond_broadcast(&p->cv);
    mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    while (pl_atomic_load(&p->pending) > 0) cpu_relax();
}
