/* tokenize.c - tokenizer speed: for every vocabulary of the test data it
 * finds, the load time (pieces, hash tables, merges) and the encoding speed
 * on a few MB of text built from the test strings (the .inp vectors and
 * the shared tsv cases: prose, code, CJK, emoji, digits, whitespace runs),
 * in CPU time.
 * Usage: build/bench/tokenize [MB [NAME]] (default 4 MB; NAME: only the
 * vocabularies whose file name contains it); PICOLM_TESTDATA as for the
 * tests. A benchmark, never a test: numbers vary with the machine's load. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "tokenizer.h"

/* CPU time of the process: on a shared machine wall time mostly measures
 * the other jobs */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p) p[len] = 0;
    *n = (size_t)len;
    return p;
}

typedef struct text {
    char *p;
    size_t n, cap;
} text;

static void append(text *t, const char *s, size_t n) {
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2;
        t->p = realloc(t->p, t->cap);
        if (!t->p) exit(1);
    }
    memcpy(t->p + t->n, s, n);
    t->n += n;
}

/* the .inp strings, separators dropped, and the hex texts of the tsv cases */
static void gather(text *t, const char *dir) {
    static const char *inps[] = {"vocab/ggml-vocab-llama-spm.gguf.inp"};
    static const char *tsvs[] = {"llama3", "qwen3", "gpt-2", "deepseek-llm", "starcoder", "falcon"};
    char path[4096];
    for (size_t i = 0; i < sizeof inps / sizeof inps[0]; i++) {
        size_t n;
        snprintf(path, sizeof path, "%s/%s", dir, inps[i]);
        char *s = read_all(path, &n);
        if (!s) continue;
        static const char sep[] = "\n__ggml_vocab_test__\n";
        for (char *p = s, *q; p < s + n; p = q + sizeof sep - 1) {
            q = strstr(p, sep);
            if (!q) q = s + n;
            append(t, p, (size_t)(q - p));
            append(t, "\n", 1);
            if (q == s + n) break;
        }
        free(s);
    }
    for (size_t i = 0; i < sizeof tsvs / sizeof tsvs[0]; i++) {
        size_t n;
        snprintf(path, sizeof path, "%s/refs/tok-%s.shared.tsv", dir, tsvs[i]);
        char *s = read_all(path, &n);
        if (!s) continue;
        for (char *line = s; line < s + n;) {
            char *eol = strchr(line, '\n');
            if (!eol) eol = s + n;
            if (line[0] != '#')
                for (char *h = line; h + 1 < eol && *h != '\t'; h += 2) {
                    unsigned v;
                    if (sscanf(h, "%2x", &v) != 1) break;
                    char c = (char)v;
                    append(t, &c, 1);
                }
            append(t, "\n", 1);
            line = eol + 1;
        }
        free(s);
    }
}

int main(int argc, char **argv) {
    double mb = argc > 1 ? atof(argv[1]) : 4.0;
    const char *dir = getenv("PICOLM_TESTDATA");
    if (!dir || !*dir) dir = "../shared/testdata";
    text base = {0}, big = {0};
    gather(&base, dir);
    if (!base.n) {
        printf("tokenize: no test strings under %s (set PICOLM_TESTDATA)\n", dir);
        return 0;
    }
    while (big.n < (size_t)(mb * 1e6)) append(&big, base.p, base.n);
    printf("text: %.2f MB (%zu bytes of test strings repeated)\n", (double)big.n / 1e6, base.n);
    static const char *files[] = {"ggml-vocab-llama-spm", "ggml-vocab-phi-3", "vocab-llama3", "vocab-qwen3",
                                  "ggml-vocab-gpt-2", "ggml-vocab-deepseek-llm", "ggml-vocab-deepseek-coder",
                                  "ggml-vocab-starcoder", "ggml-vocab-falcon"};
    int32_t *ids = malloc(big.n * sizeof *ids + 64);
    if (!ids) return 1;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[4096], err[256];
        if (argc > 2 && !strstr(files[f], argv[2])) continue;
        snprintf(path, sizeof path, "%s/vocab/%s.gguf", dir, files[f]);
        size_t n;
        char *buf = read_all(path, &n);
        if (!buf) continue;
        gguf_file g;
        pl_tokenizer *t = NULL;
        if (gguf_parse(&g, buf, n, err, sizeof err)) {
            printf("%-26s %s\n", files[f], err);
            free(buf);
            continue;
        }
        double t0 = now();
        int rc = pl_tokenizer_load(&t, &g, err, sizeof err);
        double t1 = now();
        if (rc) {
            printf("%-26s %s\n", files[f], err);
        } else {
            int k = pl_tokenizer_encode(t, big.p, big.n, 0, 0, ids, (int)big.n + 16);
            double t2 = now();
            printf("%-26s %s %-14s %6d tokens: load %6.1f ms, encode %6.2f MB/s (%.2f bytes/token)\n", files[f],
                   pl_tokenizer_kind(t), pl_tokenizer_pre(t), pl_tokenizer_n_vocab(t), (t1 - t0) * 1e3,
                   (double)big.n / 1e6 / (t2 - t1), k > 0 ? (double)big.n / k : 0.0);
        }
        pl_tokenizer_free(t);
        gguf_free(&g);
        free(buf);
    }
    free(ids);
    free(base.p);
    free(big.p);
    return 0;
}
