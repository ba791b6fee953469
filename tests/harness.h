/* harness.h - a tiny test harness: CHECK counts, main prints the summary
 * line "N passed, N failed" that CI reads. Tests find the shared reference
 * data through PICOLM_TESTDATA (default ../shared/testdata). */
#ifndef PICOLM_HARNESS_H
#define PICOLM_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) {                                                         \
            t_pass++;                                                       \
        } else {                                                            \
            t_fail++;                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

static inline const char *t_datadir(void) {
    const char *d = getenv("PICOLM_TESTDATA");
    return d && *d ? d : "../shared/testdata";
}

/* Path under the test data dir in a static buffer (one at a time). */
static inline const char *t_path(const char *rel) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", t_datadir(), rel);
    return buf;
}

/* 1 when the reference data is there. Without it (a clone with no
 * ../shared beside it) a test that needs it prints one line and counts
 * nothing: t_skip_without_data("test_model") at the top of such a test. */
static inline int t_have_data(void) {
    char p[4200];
    snprintf(p, sizeof p, "%s/README.md", t_datadir());
    FILE *f = fopen(p, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}
static inline int t_skip_without_data(const char *what) {
    if (t_have_data()) return 0;
    printf("%s: skipped: no reference data at %s (set PICOLM_TESTDATA)\n", what, t_datadir());
    return 1;
}

/* Read a whole file; NULL if missing. */
static inline void *t_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    if (p) p[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return p;
}

static inline int t_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
