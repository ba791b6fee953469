/* membw.c - memory-read bandwidth with N threads: each thread sums its slice
 * of a 1 GiB buffer (bigger than any cache) a few times; prints GB/s. The
 * benchmark divides the engine's weight bytes/s by this figure. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE ((size_t)1 << 30)

typedef struct { const uint64_t *p; size_t n; uint64_t sum; } slice;

static void *reader(void *arg) {
    slice *s = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= s->n; i += 4) {
        a += s->p[i];
        b += s->p[i + 1];
        c += s->p[i + 2];
        d += s->p[i + 3];
    }
    s->sum = a + b + c + d;
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 1;
    if (nt < 1 || nt > 64) nt = 1;
    uint64_t *buf = malloc(SIZE);
    if (!buf) return 1;
    memset(buf, 1, SIZE);
    double best = 0;
    for (int rep = 0; rep < 4; rep++) {
        pthread_t th[64];
        slice sl[64];
        size_t per = SIZE / 8 / (size_t)nt;
        double t0 = now();
        for (int i = 0; i < nt; i++) {
            sl[i] = (slice){buf + per * i, per, 0};
            pthread_create(&th[i], NULL, reader, &sl[i]);
        }
        uint64_t sum = 0;
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            sum += sl[i].sum;
        }
        double gbs = SIZE / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
        if (sum == 42) puts("");
    }
    printf("%.2f\n", best);
    free(buf);
    return 0;
}
