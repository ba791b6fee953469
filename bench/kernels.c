/* kernels.c - matmul microbenchmark per weight type and kernel level (not
 * part of make test). For a rows x cols weight matrix (default 5632 x 2048,
 * TinyLlama's FFN): generation (nb = 1) as GB/s of weights streamed, with
 * enough copies of the matrix to defeat the caches, and the same for a few
 * columns at once (-b, default 4: a server's streams); prefill (nb = 32) as
 * GFLOP/s (2 * rows * cols * nb per call). Single-threaded unless -t 2.
 *
 *   make -s && cc -O2 -Iinclude -Isrc bench/kernels.c build/libpicolm-internal.a -lm -lpthread -o build/bench_kernels
 *   build/bench_kernels [-t threads] [-r rows] [-c cols] [-p prefill columns, 32] [-T Q4_K,Q6_K,...]
 *                       [-L level] [-cpu] [-hot] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

/* -cpu: time by the process's CPU time over the threads, which leaves out
 * the time the scheduler gives to other processes on a shared machine. */
static int use_cpu_time;
/* -hot: one copy of the matrix (pick -r so it fits a cache): compute speed. */
static int hot;

static double now(void) {
    struct timespec ts;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const pl_kernels_t *K;
    uint32_t type;
    const uint8_t *w;
    size_t rb;
    int rows, cols, nb;
    const uint8_t *xq;
    size_t xs;
    float *y;
    size_t ys;
    int ith, nth;
} job;

static void *run(void *arg) {
    const job *j = arg;
    int groups = (j->rows + 3) / 4, per = (groups + j->nth - 1) / j->nth * 4;
    int r0 = per * j->ith, r1 = r0 + per < j->rows ? r0 + per : j->rows;
    if (r0 < r1)
        j->K->matmul(j->type, j->w + (size_t)r0 * j->rb, j->rb, r1 - r0, j->cols, j->xq, j->xs, j->nb, j->y + r0,
                     j->ys);
    return NULL;
}

static void matmul_mt(job j) {
    pthread_t th[8];
    job js[8];
    for (int i = 0; i < j.nth; i++) {
        js[i] = j;
        js[i].ith = i;
        if (i) pthread_create(&th[i], NULL, run, &js[i]);
    }
    run(&js[0]);
    for (int i = 1; i < j.nth; i++) pthread_join(th[i], NULL);
}

int main(int argc, char **argv) {
    int rows = 5632, cols = 2048, nth = 1, few = 4, NB = 32;
    const char *only = NULL, *level = NULL;
    for (int i = 1; i < argc; i++) {
        const int more = i + 1 < argc;
        if (!strcmp(argv[i], "-cpu")) use_cpu_time = 1;
        else if (!strcmp(argv[i], "-hot")) hot = 1;
        else if (more && !strcmp(argv[i], "-t")) nth = atoi(argv[++i]);
        else if (more && !strcmp(argv[i], "-r")) rows = atoi(argv[++i]);
        else if (more && !strcmp(argv[i], "-c")) cols = atoi(argv[++i]);
        else if (more && !strcmp(argv[i], "-T")) only = argv[++i];
        else if (more && !strcmp(argv[i], "-L")) level = argv[++i];
        else if (more && !strcmp(argv[i], "-b")) few = atoi(argv[++i]);
        else if (more && !strcmp(argv[i], "-p")) NB = atoi(argv[++i]);
    }
    if (nth < 1 || nth > 8) nth = 1;
    if (few < 2 || few > 32) few = 4;
    if (NB < 2 || NB > 512) NB = 32;
    static const uint32_t types[] = {PL_TYPE_Q4_K, PL_TYPE_Q6_K, PL_TYPE_Q5_K, PL_TYPE_Q8_0, PL_TYPE_Q4_0,
                                     PL_TYPE_F16,  PL_TYPE_F32,  PL_TYPE_Q2_K, PL_TYPE_Q3_K, PL_TYPE_Q4_1,
                                     PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_BF16, PL_TYPE_IQ4_NL, PL_TYPE_IQ4_XS};
    printf("%d x %d, %d thread(s); nb=1 and nb=%d (a few streams): GB/s of weights, nb=%d: GFLOP/s\n", rows, cols,
           nth, few, NB);
    printf("%-6s %-8s %9s %8s%-2d %6s%-3d\n", "type", "level", "nb=1", "nb=", few, "nb=", NB);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        const pl_type_traits *tr = pl_type_traits_get(types[t]);
        if (only && !strstr(only, tr->name)) continue;
        const uint32_t act = tr->vec_dot_type;
        const size_t rb = pl_row_size(types[t], cols), mat = rb * (size_t)rows;
        int copies = (int)((256u << 20) / mat) + 1; /* > 256 MB in all: beyond any cache */
        if (copies > 64) copies = 64;
        if (hot) copies = 1;
        uint8_t *w = malloc(mat * (size_t)copies);
        float *row = malloc(sizeof(float) * (size_t)cols);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) row[i] = (float)((r * 31 + i * 17) % 101 - 50) / 50.0f;
            tr->from_float(row, w + (size_t)r * rb, cols);
        }
        for (int c = 1; c < copies; c++) memcpy(w + mat * (size_t)c, w, mat);
        const size_t xs = act == PL_TYPE_F32 ? sizeof(float) * (size_t)cols : pl_row_size(act, cols);
        uint8_t *xq = malloc(xs * NB);
        for (int b = 0; b < NB; b++) {
            for (int i = 0; i < cols; i++) row[i] = (float)((b * 7 + i * 13) % 97 - 48) / 48.0f;
            pl_kernels_generic.quantize(act, row, xq + xs * (size_t)b, cols);
        }
        float *y = malloc(sizeof(float) * (size_t)rows * NB);
        const char *const *lv = pl_kernels_available();
        for (int l = 0; lv[l]; l++) {
            if (level && strcmp(level, lv[l])) continue;
            const pl_kernels_t *K = pl_kernels_by_name(lv[l]);
            const int slow = !strcmp(K->name, "generic");
            double res[3];
            for (int m = 0; m < 3; m++) {
                const int nb = m == 2 ? NB : m ? few : 1;
                /* the generic level at nb = 32 runs a slice of the rows */
                const int rr = (m == 2 && slow) ? rows / 16 : rows;
                job j = {K, types[t], w, rb, rr, cols, nb, xq, xs, y, (size_t)rows, 0, nth};
                int it = 0;
                double t0 = now(), el;
                do {
                    j.w = w + mat * (size_t)(it % copies);
                    matmul_mt(j);
                    it++;
                    el = now() - t0;
                } while (el < 0.5 * (use_cpu_time ? nth : 1));
                if (use_cpu_time) el /= nth;
                res[m] = m == 2 ? 2.0 * rr * cols * nb * it / el * 1e-9 : (double)rb * rr * it / el * 1e-9;
            }
            printf("%-6s %-8s %9.2f %10.2f %9.2f\n", tr->name, K->name, res[0], res[1], res[2]);
            fflush(stdout);
        }
        free(w), free(row), free(xq), free(y);
    }
    return 0;
}
