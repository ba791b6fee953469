/* test_state.c - the prompt cache (src/state.c) on hostile files and
 * paths: a cache loaded for a prompt of 0, 1 or 2 tokens reuses nothing
 * (it once computed a negative length), NaN or Inf in the KV values is
 * corruption even under a valid checksum, a size that disagrees with the
 * header is refused before allocating, and a save never replaces what is
 * not a cache (a directory, a FIFO, another file), follows a symlink to
 * replace its target, and names the reason when it cannot write. Needs the
 * reference models (skips without them). */
#include <errno.h>
#include <stdint.h>
#ifdef _WIN32
#include <direct.h>
#include <process.h>
#else
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "harness.h"
#include "picolm.h"

static char dir[400];

/* a path in the test's directory; a ring of buffers, more than the test
 * ever holds at once */
static const char *tpath(const char *name) {
    static char buf[64][600];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static uint64_t fnv1a(const uint8_t *b, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int same_file(const char *path, const void *p, size_t n) {
    size_t len;
    char *q = t_read_file(path, &len);
    int same = q && len == n && !memcmp(p, q, n);
    free(q);
    return same;
}

static pl_model *model;
static const int32_t prompt[12] = {1, 415, 327, 260, 400, 301, 289, 310, 298, 350, 311, 270};

static pl_context *new_ctx(int kv_q8) {
    pl_context_params cp = {.n_ctx = 256, .n_threads = 1, .mem_budget_mb = -1, .kv_q8 = kv_q8, .n_seq = 1};
    pl_context *c = NULL;
    char err[256];
    CHECK(pl_context_new(&c, model, &cp, err, sizeof err) == 0, "context: %s", err);
    return c;
}

/* a prompt of 0, 1 or 2 tokens, or a longer one sharing a prefix */
static void test_short_prompts(void) {
    pl_context *c = new_ctx(0);
    if (!c) return;
    char err[256];
    const char *kv = tpath("short.kv");
    CHECK(pl_eval(c, prompt, 12, 0, NULL, 0) == 0, "eval");
    CHECK(pl_cache_save(c, kv, prompt, 12, err, sizeof err) == 0, "save: %s", err);
    for (int n = 0; n <= 12; n++) {
        pl_context *d = new_ctx(0);
        int reused = -1;
        int rc = pl_cache_load(d, kv, prompt, n, &reused, err, sizeof err);
        int want = n > 1 ? n - 1 : 0;
        CHECK(rc == 0 && reused == want, "load for %d tokens: rc %d, reused %d (want %d): %s", n, rc, reused, want,
              rc ? err : "");
        pl_context_free(d);
    }
    /* a different second token: only the first is shared */
    int32_t other[12];
    memcpy(other, prompt, sizeof other);
    other[1] = 9;
    int reused = -1;
    CHECK(pl_cache_load(c, kv, other, 12, &reused, err, sizeof err) == 0 && reused == 1, "shared prefix: %d", reused);
    pl_context_free(c);
}

/* a cache whose KV values hold NaN or Inf, its checksum recomputed */
static void test_nonfinite_kv(int kv_q8) {
    pl_context *c = new_ctx(kv_q8);
    if (!c) return;
    char err[256];
    const char *kv = tpath("nan.kv"), *bad = tpath("nan-bad.kv");
    CHECK(pl_eval(c, prompt, 12, 0, NULL, 0) == 0, "eval");
    CHECK(pl_cache_save(c, kv, prompt, 12, err, sizeof err) == 0, "save: %s", err);
    size_t len;
    uint8_t *buf = t_read_file(kv, &len);
    CHECK(buf != NULL && len > 100, "read back the cache");
    if (!buf) { pl_context_free(c); return; }
    size_t kv_start = 44 + 12 * 4, row = kv_q8 ? 34 : 64; /* head_dim 32 */
    /* NaN and Inf as an FP16 value (or a Q8_0 block's scale) in the first
     * K row, a middle row and the last V row */
    const uint16_t vals[2] = {0x7E00, 0xFC00};
    const size_t at[3] = {kv_start, kv_start + 7 * row, len - 8 - row};
    for (int v = 0; v < 2; v++)
        for (int a = 0; a < 3; a++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, buf, len);
            memcpy(copy + at[a], &vals[v], 2);
            uint64_t h = fnv1a(copy, len - 8);
            memcpy(copy + len - 8, &h, 8);
            write_file(bad, copy, len);
            free(copy);
            pl_context *d = new_ctx(kv_q8);
            int reused = -1;
            int rc = pl_cache_load(d, bad, prompt, 12, &reused, err, sizeof err);
            CHECK(rc != 0 && reused == 0 && strstr(err, "corrupt") && strstr(err, "NaN"),
                  "%s %s at %zu: rc %d reused %d '%s'", kv_q8 ? "q8" : "f16", v ? "-Inf" : "NaN", at[a], rc, reused,
                  err);
            pl_context_free(d);
        }
    /* the untouched file still loads; a size that disagrees with the
     * header (a truncated or extended file) is refused */
    int reused = -1;
    CHECK(pl_cache_load(c, kv, prompt, 12, &reused, err, sizeof err) == 0 && reused == 11, "good cache: %s", err);
    write_file(bad, buf, len - 1);
    CHECK(pl_cache_load(c, bad, prompt, 12, &reused, err, sizeof err) != 0 && strstr(err, "truncated"), "short file");
    uint8_t *longer = calloc(1, len + 1);
    memcpy(longer, buf, len);
    write_file(bad, longer, len + 1);
    CHECK(pl_cache_load(c, bad, prompt, 12, &reused, err, sizeof err) != 0 && strstr(err, "corrupt"), "long file");
    free(longer);
    free(buf);
    pl_context_free(c);
}

/* what a save may replace, and what it must leave alone */
static void test_save_targets(void) {
    pl_context *c = new_ctx(0);
    if (!c) return;
    char err[256];
    CHECK(pl_eval(c, prompt, 12, 0, NULL, 0) == 0, "eval");

    /* another file: refused, kept byte for byte */
    const char *text = "precious notes\n", *notes = tpath("notes.txt");
    write_file(notes, text, strlen(text));
    CHECK(pl_cache_save(c, notes, prompt, 12, err, sizeof err) != 0 && strstr(err, "not a picolm cache"),
          "a text file was replaced: %s", err);
    CHECK(same_file(notes, text, strlen(text)), "the text file changed");
    /* an empty file holds nothing to lose: it becomes the cache */
    const char *empty = tpath("empty.kv");
    write_file(empty, "", 0);
    CHECK(pl_cache_save(c, empty, prompt, 12, err, sizeof err) == 0, "empty file: %s", err);
    int reused = -1;
    CHECK(pl_cache_load(c, empty, prompt, 12, &reused, err, sizeof err) == 0 && reused == 11, "reload: %s", err);
    /* a missing directory: the reason, from the system */
    const char *nodir = tpath("no/such/dir/kv");
    CHECK(pl_cache_save(c, nodir, prompt, 12, err, sizeof err) != 0 && strstr(err, strerror(ENOENT)),
          "missing dir: '%s'", err);
#ifndef _WIN32
    /* a directory, a FIFO: never replaced (and loading a FIFO does not
     * wait for a writer) */
    const char *sub = tpath("subdir"), *fifo = tpath("fifo");
    CHECK(mkdir(sub, 0700) == 0, "mkdir");
    CHECK(pl_cache_save(c, sub, prompt, 12, err, sizeof err) != 0 && strstr(err, "not a regular file"), "dir: %s", err);
    struct stat st;
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode), "the directory is gone");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    CHECK(pl_cache_load(c, fifo, prompt, 12, &reused, err, sizeof err) != 0 && strstr(err, "not a regular file"),
          "fifo load: %s", err);
    CHECK(pl_cache_save(c, fifo, prompt, 12, err, sizeof err) != 0, "fifo save accepted");
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is gone");
    /* (devices take the same path; /dev/null is not tried: a regression
     * would replace it for the whole machine) */
    /* a symlink (relative, through a second link, and dangling): the link
     * stays, its final target becomes the cache */
    CHECK(mkdir(tpath("real"), 0700) == 0, "mkdir real");
    CHECK(symlink("real/target.kv", tpath("link1")) == 0 && symlink("link1", tpath("link2")) == 0, "symlink");
    CHECK(pl_cache_save(c, tpath("link2"), prompt, 12, err, sizeof err) == 0, "save through links: %s", err);
    CHECK(lstat(tpath("link2"), &st) == 0 && S_ISLNK(st.st_mode), "link2 replaced");
    CHECK(lstat(tpath("link1"), &st) == 0 && S_ISLNK(st.st_mode), "link1 replaced");
    CHECK(lstat(tpath("real/target.kv"), &st) == 0 && S_ISREG(st.st_mode), "the target is not a file");
    CHECK(pl_cache_load(c, tpath("link2"), prompt, 12, &reused, err, sizeof err) == 0 && reused == 11, "%s", err);
    CHECK(pl_cache_save(c, tpath("link2"), prompt, 12, err, sizeof err) == 0, "save again: %s", err);
    CHECK(lstat(tpath("link2"), &st) == 0 && S_ISLNK(st.st_mode), "link2 replaced on the second save");
    /* a link to a text file: the text file is kept */
    CHECK(symlink("notes.txt", tpath("link-notes")) == 0, "symlink");
    CHECK(pl_cache_save(c, tpath("link-notes"), prompt, 12, err, sizeof err) != 0, "linked text file replaced");
    CHECK(same_file(notes, text, strlen(text)), "the linked text file changed");
    /* a save keeps the permissions of the cache it replaces */
    CHECK(chmod(empty, 0640) == 0, "chmod");
    CHECK(pl_cache_save(c, empty, prompt, 12, err, sizeof err) == 0, "save: %s", err);
    CHECK(stat(empty, &st) == 0 && (st.st_mode & 0777) == 0640, "mode %o", (unsigned)(st.st_mode & 0777));
    /* an unwritable directory (not as root, who may write anywhere) */
    if (geteuid() != 0) {
        const char *ro = tpath("ro");
        CHECK(mkdir(ro, 0500) == 0, "mkdir ro");
        CHECK(pl_cache_save(c, tpath("ro/kv"), prompt, 12, err, sizeof err) != 0 && strstr(err, strerror(EACCES)),
              "read-only dir: '%s'", err);
    }
#endif
    pl_context_free(c);
}

int main(void) {
    if (t_skip_without_data("test_state")) return 0;
    char err[256];
    if (pl_model_open(&model, t_path("models/tiny512-Q8_0.gguf"), err, sizeof err)) {
        CHECK(0, "open: %s", err);
        return t_summary("test_state");
    }
#ifdef _WIN32
    const char *tmp = getenv("TEMP");
    snprintf(dir, sizeof dir, "%s\\picolm_test_state.%d", tmp ? tmp : ".", _getpid());
    if (_mkdir(dir) != 0) {
        CHECK(0, "mkdir %s: %s", dir, strerror(errno));
        return t_summary("test_state");
    }
#else
    snprintf(dir, sizeof dir, "/tmp/test_state.XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp: %s", strerror(errno));
        return t_summary("test_state");
    }
#endif
    test_short_prompts();
    test_nonfinite_kv(0);
    test_nonfinite_kv(1);
    test_save_targets();
    pl_model_close(model);
#ifdef _WIN32
    const char *files[] = {"short.kv", "nan.kv", "nan-bad.kv", "notes.txt", "empty.kv"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) remove(tpath(files[i]));
    _rmdir(dir);
#else
    char cmd[1000];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", dir, dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
#endif
    return t_summary("test_state");
}
