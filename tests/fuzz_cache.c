/* fuzz_cache.c - libFuzzer target: fuzzed bytes as a prompt-cache file,
 * read by pl_cache_load into a context of the tiny512-Q8_0 test model
 * (n_ctx 64, one thread), each input twice: as it is, and with its
 * trailing checksum made right (FNV-1a 64 of the rest, little-endian, as
 * src/state.c writes it) so that mutations reach the checks past it. A
 * load that reuses tokens is followed by evaluating the rest of the prompt.
 * Without the test data it prints one skip line and exits. Seeds:
 * tests/corpus/fuzz_cache/ (PICOLM_FUZZ_MKSEED=DIR writes a valid one). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "picolm.h"

#define N_CTX 64
#define N_TOK 12
static const int32_t prompt[N_TOK] = {1, 15043, 3186, 29892, 920, 526, 366, 29973, 13, 1576, 322, 2};
static pl_model *model;
static pl_context *ctx;
static char path[256];
static float *logits;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *d = getenv("PICOLM_TESTDATA");
    char mp[4096], err[256];
    snprintf(mp, sizeof mp, "%s/models/tiny512-Q8_0.gguf", d && *d ? d : "../shared/testdata");
    if (access(mp, R_OK) != 0 || pl_model_open(&model, mp, err, sizeof err) != 0) {
        printf("fuzz_cache: skipped: no test model at %s\n", mp);
        exit(0);
    }
    pl_context_params cp;
    memset(&cp, 0, sizeof cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = 1;
    cp.mem_budget_mb = -1;
    if (pl_context_new(&ctx, model, &cp, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_cache: context: %s\n", err);
        exit(1);
    }
    int n_vocab = pl_model_get_info(model)->n_vocab;
    logits = malloc((size_t)n_vocab * sizeof *logits);
    const char *seed_dir = getenv("PICOLM_FUZZ_MKSEED");
    if (seed_dir) { /* a valid cache of the first 8 prompt tokens */
        int32_t ids[N_TOK];
        for (int i = 0; i < N_TOK; i++) ids[i] = prompt[i] % n_vocab;
        snprintf(path, sizeof path, "%s/valid.cache", seed_dir);
        int rc = pl_eval(ctx, ids, 8, 0, NULL, 0) || pl_cache_save(ctx, path, ids, 8, err, sizeof err);
        printf("fuzz_cache: seed %s: %s\n", path, rc ? err : "written");
        exit(rc != 0);
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "fuzz_cache: cannot make a temporary file\n");
        exit(1);
    }
    close(fd);
    return 0;
}

static void load(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    int n_vocab = pl_model_get_info(model)->n_vocab, reused = -1;
    int32_t ids[N_TOK];
    for (int i = 0; i < N_TOK; i++) ids[i] = prompt[i] % n_vocab;
    char err[256];
    int rc = pl_cache_load(ctx, path, ids, N_TOK, &reused, err, sizeof err);
    if (rc != 0) {
        if (reused != 0 || !err[0]) abort(); /* a failed load reuses nothing and says why */
        return;
    }
    if (reused < 0 || reused > N_TOK - 2) abort();
    if (reused > 0 && pl_eval(ctx, ids + reused, N_TOK - reused, reused, logits, 0) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(data, size);
    if (size > 8) {
        uint8_t *b = malloc(size);
        if (!b) return 0;
        memcpy(b, data, size);
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < size - 8; i++) h = (h ^ b[i]) * 0x100000001b3ull;
        for (int i = 0; i < 8; i++) b[size - 8 + i] = (uint8_t)(h >> (8 * i));
        load(b, size);
        free(b);
    }
    return 0;
}
