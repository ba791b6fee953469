/* pool.h - a persistent thread pool: pl_pool_run(fn, arg) calls fn(arg, ith,
 * nth) once for every part ith < nth (nth = the pool size), on whichever
 * threads claim them (the caller included), and returns when all are done.
 * Workers spin briefly, then sleep on a condition variable.
 *
 * Sharing: contexts take their pool with pl_pool_acquire(n), which returns
 * the process's one pool of n threads (starting it on first use) and counts
 * a reference; pl_pool_release drops it and the last release stops the
 * threads. Both are safe from any thread. pl_pool_run on a pool of n > 1
 * is safe from several threads at once: runs are serialized (a mutex held
 * across the run), so the parts of two runs never overlap and two parts
 * never run on the same thread at once. Per-part scratch indexed by ith
 * must belong to the caller (the context), not to the pool: on a pool of
 * size 1 each run is fn(arg, 0, 1) on its caller, with no lock, so runs
 * from two threads do overlap there. fn must not run the pool itself. */
#ifndef PICOLM_POOL_H
#define PICOLM_POOL_H

typedef void (*pl_task_fn)(void *arg, int ith, int nth);
typedef struct pl_pool pl_pool;

pl_pool *pl_pool_acquire(int n_threads); /* shared; NULL on failure; 1 = no extra threads */
void pl_pool_release(pl_pool *p);        /* what acquire returned; accepts NULL */
int pl_pool_count(void);                 /* pools acquired and not yet freed (tests) */

pl_pool *pl_pool_new(int n_threads); /* a private pool; NULL on failure */
void pl_pool_free(pl_pool *p);       /* of pl_pool_new only; accepts NULL */
int pl_pool_size(const pl_pool *p);  /* n_threads clamped to 1..65535; 1 for NULL */
void pl_pool_run(pl_pool *p, pl_task_fn fn, void *arg);

#endif
