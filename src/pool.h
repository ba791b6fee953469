/* pool.h - a persistent thread pool: pl_pool_run(fn, arg) calls fn(arg, ith,
 * nth) once for every part ith < nth (nth = the pool size), on whichever
 * threads claim them (the caller included), and returns when all are done.
 * Two parts never run on the same thread at once, so per-part scratch is
 * safe. Workers spin briefly, then sleep on a condition variable. */
#ifndef PICOLM_POOL_H
#define PICOLM_POOL_H

typedef void (*pl_task_fn)(void *arg, int ith, int nth);
typedef struct pl_pool pl_pool;

pl_pool *pl_pool_new(int n_threads); /* NULL on failure; 1 = no extra threads */
void pl_pool_free(pl_pool *p);       /* accepts NULL */
int pl_pool_size(const pl_pool *p);
void pl_pool_run(pl_pool *p, pl_task_fn fn, void *arg);

#endif
