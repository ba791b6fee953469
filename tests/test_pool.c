/* test_pool.c - the thread pool and its process-wide registry: pools of one
 * size are one pool, of two sizes two; references count; the last release
 * frees (no pool left, no thread left where /proc tells); runs from several
 * threads at once on one shared pool each run every part exactly once,
 * with correct results, and the parts of two runs never overlap. Then two
 * contexts of one model on one shared pool, evaluated from two threads at
 * once, give the logits they give one after the other (their per-thread
 * scratch is the context's, and the runs are serialized). */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdint.h>

#include "harness.h"
#include "picolm.h"
#include "pool.h"

#define MAXN 8

/* A run: every part adds its share of 0..len-1 to sum, counts its hits,
 * and checks that no part of another run is in flight (`owner`: the id of
 * the run whose parts are running, 0 between runs). */
typedef struct {
    int id, len;
    atomic_int hits[MAXN];
    atomic_int left; /* parts finished */
    long long sum[MAXN]; /* each part's own (no 64-bit atomics: armv6 has none) */
} job;

static atomic_int owner, overlaps, bad_ith;

static void task(void *arg, int ith, int nth) {
    job *j = arg;
    int expect = 0;
    if (!atomic_compare_exchange_strong(&owner, &expect, j->id) && expect != j->id) atomic_fetch_add(&overlaps, 1);
    if (ith < 0 || ith >= nth || nth > MAXN) {
        atomic_fetch_add(&bad_ith, 1);
        return;
    }
    atomic_fetch_add(&j->hits[ith], 1);
    long long s = 0;
    for (int i = ith; i < j->len; i += nth) s += i;
    j->sum[ith] = s;
    /* the last part out clears owner before it counts itself done, so
     * before the run returns and the next run can start */
    if (atomic_fetch_add(&j->left, 1) == nth - 1) {
        expect = j->id;
        if (!atomic_compare_exchange_strong(&owner, &expect, 0)) atomic_fetch_add(&overlaps, 1);
    }
}

static atomic_int next_id = 1;

/* One run of `len` items on p; 1 when every part ran once and the sum is right. */
static int run_once(pl_pool *p, int len) {
    job j = {.id = atomic_fetch_add(&next_id, 1), .len = len};
    int n = pl_pool_size(p);
    pl_pool_run(p, task, &j);
    long long sum = 0;
    for (int i = 0; i < n; i++) sum += j.sum[i];
    int ok = sum == (long long)len * (len - 1) / 2 && atomic_load(&j.left) == n;
    for (int i = 0; i < n; i++) ok &= atomic_load(&j.hits[i]) == 1;
    return ok;
}

/* Threads of this process (Linux /proc), -1 elsewhere (under wine /proc
 * is the Linux host's view, not the Windows process's). */
static int n_threads_now(void) {
#ifdef __linux__
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "Threads:", 8)) n = atoi(line + 8);
    fclose(f);
    return n;
#else
    return -1;
#endif
}

/* The count once it is want, or after a second: a joined thread may stay
 * in /proc a moment longer (qemu-user lets its host thread go after the
 * guest's join returns). */
static int threads_settled(int want) {
    int n = n_threads_now();
#ifdef __linux__
    for (int i = 0; i < 100 && n != want; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        n = n_threads_now();
    }
#else
    (void)want;
#endif
    return n;
}

/* The count once the threads just joined have left /proc: the least seen,
 * once it has not fallen for 300 ms (at most 3 s). Under qemu-user the
 * first pool's host threads can outlive the join by a while, and a count
 * taken at once is then too high for every later check. */
static int threads_baseline(void) {
    int n = n_threads_now();
#ifdef __linux__
    for (int i = 0, still = 0; i < 300 && still < 30; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int m = n_threads_now();
        if (m < n) n = m, still = 0;
        else still++;
    }
#endif
    return n;
}

typedef struct {
    pl_pool *p; /* shared pool to run on, or NULL: acquire and release n each time */
    int n, runs, failed;
} worker_arg;

static void *runner(void *arg) {
    worker_arg *w = arg;
    for (int r = 0; r < w->runs; r++) {
        pl_pool *p = w->p ? w->p : pl_pool_acquire(w->n);
        if (!p) {
            w->failed++;
            continue;
        }
        if (!run_once(p, 1000 + r % 7)) w->failed++;
        if (!w->p) pl_pool_release(p);
    }
    return NULL;
}

/* k threads at once, each `runs` runs (on p, or acquiring a pool of n). */
static int concurrent(pl_pool *p, int n, int k, int runs) {
    pthread_t t[4];
    worker_arg w[4];
    int failed = 0, started = 0;
    for (int i = 0; i < k; i++) {
        w[i] = (worker_arg){p, n, runs, 0};
        if (pthread_create(&t[i], NULL, runner, &w[i])) break;
        started++;
    }
    CHECK(started == k, "started %d of %d threads", started, k);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        failed += w[i].failed;
    }
    return failed;
}

/* ---- two contexts on one pool ------------------------------------------ */

#define CTX_TOK 12
#define CTX_REPS 20

typedef struct {
    pl_context *c;
    int32_t tok[CTX_TOK];
    float *ref, *out; /* [n_vocab]: after the prompt, then after one token more */
    int n_vocab, failed;
} ctx_arg;

/* The prompt in one call, then its last token again one position on. */
static int ctx_eval(ctx_arg *a, float *out) {
    if (pl_eval(a->c, a->tok, CTX_TOK - 1, 0, out, 0)) return -1;
    return pl_eval(a->c, a->tok + CTX_TOK - 1, 1, CTX_TOK - 1, out + a->n_vocab, 0);
}

static void *ctx_runner(void *arg) {
    ctx_arg *a = arg;
    for (int r = 0; r < CTX_REPS; r++)
        if (ctx_eval(a, a->out) || memcmp(a->out, a->ref, 2 * (size_t)a->n_vocab * sizeof(float))) a->failed++;
    return NULL;
}

static void two_contexts(void) {
    if (!t_have_data()) {
        printf("test_pool: two contexts skipped: no reference data at %s\n", t_datadir());
        return;
    }
    char err[256];
    pl_model *m = NULL;
    if (pl_model_open(&m, t_path("models/tiny512-Q8_0.gguf"), err, sizeof err)) {
        CHECK(0, "open: %s", err);
        return;
    }
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    ctx_arg a[2];
    memset(a, 0, sizeof a);
    int ok = 1, nv = pl_model_get_info(m)->n_vocab;
    for (int i = 0; i < 2; i++) {
        a[i].n_vocab = nv;
        for (int k = 0; k < CTX_TOK; k++) a[i].tok[k] = (int32_t)(1 + (k * 37 + i * 101) % (nv - 1));
        a[i].ref = malloc(2 * (size_t)nv * sizeof(float));
        a[i].out = malloc(2 * (size_t)nv * sizeof(float));
        ok &= a[i].ref && a[i].out && !pl_context_new(&a[i].c, m, &cp, err, sizeof err);
    }
    CHECK(ok, "two contexts: %s", err);
    CHECK(!ok || pl_pool_count() == 1, "two contexts of 2 threads hold %d pools", pl_pool_count());
    for (int i = 0; ok && i < 2; i++) CHECK(ctx_eval(&a[i], a[i].ref) == 0, "eval of context %d alone", i);
    pthread_t t[2];
    int started = 0;
    for (int i = 0; ok && i < 2 && !pthread_create(&t[i], NULL, ctx_runner, &a[i]); i++) started++;
    CHECK(!ok || started == 2, "started %d of 2 threads", started);
    for (int i = 0; i < started; i++) {
        pthread_join(t[i], NULL);
        CHECK(a[i].failed == 0, "context %d: %d of %d concurrent evals differ from its evals alone", i, a[i].failed,
              CTX_REPS);
    }
    for (int i = 0; i < 2; i++) {
        pl_context_free(a[i].c);
        free(a[i].ref);
        free(a[i].out);
    }
    CHECK(pl_pool_count() == 0, "%d pools after freeing both contexts", pl_pool_count());
    pl_model_close(m);
}

int main(void) {
    /* a first thread started and stopped: runtimes that add a thread of
     * their own on the first pthread_create (TSan) have done so */
    pl_pool_free(pl_pool_new(2));
    int threads0 = threads_baseline();

    /* one size: one pool; another size: another; 0 and 1 are the same */
    pl_pool *a = pl_pool_acquire(2), *b = pl_pool_acquire(2), *c = pl_pool_acquire(3);
    CHECK(a && b && c, "acquire failed");
    CHECK(a == b, "two pools of 2 threads are not one");
    CHECK(a != c, "pools of 2 and 3 threads are one");
    CHECK(pl_pool_size(a) == 2 && pl_pool_size(c) == 3, "sizes %d %d", pl_pool_size(a), pl_pool_size(c));
    CHECK(pl_pool_count() == 2, "%d pools, want 2", pl_pool_count());
    pl_pool *d = pl_pool_acquire(0), *e = pl_pool_acquire(1);
    CHECK(d && d == e && pl_pool_size(d) == 1, "pools of 0 and 1 threads differ");
    CHECK(pl_pool_count() == 3, "%d pools, want 3", pl_pool_count());
    CHECK(threads0 < 0 || threads_settled(threads0 + 3) == threads0 + 3, "%d threads, want %d", n_threads_now(), threads0 + 3);
    pl_pool_release(d);
    pl_pool_release(e);
    pl_pool_release(NULL);

    /* the reference count: a release of one of two keeps the pool working */
    pl_pool_release(b);
    CHECK(pl_pool_count() == 2, "%d pools after one of two releases", pl_pool_count());
    CHECK(run_once(a, 100), "run after a release");
    b = pl_pool_acquire(2);
    CHECK(b == a, "a re-acquire made a new pool");
    pl_pool_release(b);
    pl_pool_release(a);
    CHECK(pl_pool_count() == 1, "%d pools after the last release of 2", pl_pool_count());
    a = pl_pool_acquire(2); /* a new pool now, which must work too */
    CHECK(a && run_once(a, 100), "run on a pool acquired again");
    pl_pool_release(a);
    pl_pool_release(c);
    CHECK(pl_pool_count() == 0, "%d pools left", pl_pool_count());
    CHECK(threads0 < 0 || threads_settled(threads0) == threads0, "%d threads left, want %d", n_threads_now(), threads0);

    /* runs from 2-4 threads at once on one shared pool */
    int sizes[] = {1, 2, 4}, ks[] = {2, 3, 4};
    for (int si = 0; si < 3; si++) {
        pl_pool *p = pl_pool_acquire(sizes[si]);
        CHECK(p != NULL, "acquire %d", sizes[si]);
        if (!p) continue;
        for (int ki = 0; ki < 3; ki++) {
            atomic_store(&overlaps, 0);
            int failed = concurrent(p, 0, ks[ki], 1000);
            CHECK(failed == 0, "pool of %d, %d threads: %d runs wrong", sizes[si], ks[ki], failed);
            /* a pool of 1 runs each caller's part 0 on the caller: those overlap by design */
            if (sizes[si] > 1)
                CHECK(atomic_load(&overlaps) == 0, "pool of %d, %d threads: runs overlapped %d times", sizes[si], ks[ki],
                      atomic_load(&overlaps));
        }
        pl_pool_release(p);
    }
    CHECK(atomic_load(&bad_ith) == 0, "a part index out of range");

    /* many acquire/release cycles, from 4 threads at once: nothing left */
    for (int i = 0; i < 200; i++) {
        pl_pool *p = pl_pool_acquire(1 + i % 3);
        CHECK(p && run_once(p, 50), "cycle %d", i);
        pl_pool_release(p);
    }
    atomic_store(&overlaps, 0);
    CHECK(concurrent(NULL, 2, 4, 100) == 0, "concurrent acquire/run/release");
    CHECK(atomic_load(&overlaps) == 0, "runs overlapped %d times during the cycles", atomic_load(&overlaps));
    CHECK(pl_pool_count() == 0, "%d pools left after the cycles", pl_pool_count());
    CHECK(threads0 < 0 || threads_settled(threads0) == threads0, "%d threads left after the cycles, want %d", n_threads_now(),
          threads0);

    /* a private pool is not in the registry */
    pl_pool *priv = pl_pool_new(2);
    CHECK(priv && pl_pool_count() == 0 && run_once(priv, 10), "private pool");
    pl_pool_free(priv);

    two_contexts();
    CHECK(threads0 < 0 || threads_settled(threads0) == threads0, "%d threads left after the contexts, want %d", n_threads_now(),
          threads0);
    return t_summary("test_pool");
}
