/* state.c - the prompt cache: the KV state of a processed prompt saved to a
 * file and reused by a later run for the longest common token prefix.
 *
 * File layout (little-endian):
 *   "PLKVCACH" | u32 version | u32 KV type (ggml id: 1 F16, 8 Q8_0) | u64 model fingerprint
 *   | u32 n_ctx, n_layer, n_head_kv, head_dim | u32 n_tokens | i32 tokens[]
 *   | for each layer, KV head: K rows [n_tokens], V rows [n_tokens] in the KV type
 *   | u64 FNV-1a checksum of everything before it.
 * The fingerprint hashes the GGUF header, metadata and tensor table, so a
 * cache made with another model (or another quantization) is refused; so is
 * a file whose KV values hold NaN or Inf, whatever its checksum says.
 *
 * Saving never replaces what is not a cache: the path must be missing, an
 * empty file or a picolm cache (a symlink is followed and its target
 * replaced, the link kept); anything else (a device, a directory, another
 * file) is refused untouched. The state goes to a temporary file created
 * exclusively beside the target, synced, renamed over it, and the directory
 * synced: a writer killed at any point leaves the previous cache whole. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#ifdef _WIN32
#include <io.h>
#include <process.h>
#include <windows.h>
#else
#include <unistd.h>
#endif

#include "model_impl.h"

#define CACHE_MAGIC "PLKVCACH"
#define CACHE_VERSION 1u
#define HEADER_BYTES (8 + 4 + 4 + 8 + 4 * 4 + 4)

#define set_err pl_set_err

#ifdef _WIN32 /* MSVC in C11 mode has only the underscored names */
#define OF_RDONLY _O_RDONLY
#define OF_WRONLY _O_WRONLY
#define OF_CREAT _O_CREAT
#define OF_EXCL _O_EXCL
#define O_BIN _O_BINARY
#define sys_open _open
#define sys_close _close
#define sys_read(fd, b, n) _read(fd, b, (unsigned)(n))
#define sys_write(fd, b, n) _write(fd, b, (unsigned)(n))
#define sys_fsync _commit
#define sys_getpid _getpid
typedef struct _stat64 sys_stat;
#define sys_fstat _fstat64
#define sys_stat_path _stat64
#define IS_REG(m) (((m) & _S_IFMT) == _S_IFREG)
#else
#define OF_RDONLY O_RDONLY
#define OF_WRONLY O_WRONLY
#define OF_CREAT O_CREAT
#define OF_EXCL O_EXCL
#define O_BIN 0
#define sys_open open
#define sys_close close
#define sys_read read
#define sys_write write
#define sys_fsync fsync
#define sys_getpid getpid
typedef struct stat sys_stat;
#define sys_fstat fstat
#define IS_REG(m) S_ISREG(m)
#endif
#ifndef O_NONBLOCK
#define O_NONBLOCK 0
#endif
#ifndef O_NOFOLLOW
#define O_NOFOLLOW 0
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static uint64_t model_fingerprint(const pl_model *m) {
    uint64_t n = m->gguf.data_offset;
    uint64_t h = fnv1a(FNV_INIT, m->gguf.base, (size_t)n);
    uint64_t size = m->gguf.size;
    return fnv1a(h, &size, sizeof size);
}

static void put32(uint8_t **p, uint32_t v) { memcpy(*p, &v, 4); *p += 4; }
static void put64(uint8_t **p, uint64_t v) { memcpy(*p, &v, 8); *p += 8; }
static uint32_t get32(const uint8_t **p) { uint32_t v; memcpy(&v, *p, 4); *p += 4; return v; }
static uint64_t get64(const uint8_t **p) { uint64_t v; memcpy(&v, *p, 8); *p += 8; return v; }

static size_t cache_bytes(const pl_context *c, int n_tokens) {
    const pl_hparams *in = &c->m->hp; /* the shapes the KV layout follows */
    size_t kv = (size_t)in->n_layer * in->n_head_kv * 2 * (size_t)n_tokens * c->kv_row;
    return HEADER_BYTES + (size_t)n_tokens * 4 + kv + 8;
}

/* The whole of n bytes, retrying short writes and EINTR. */
static int write_all(int fd, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : n;
        long w = (long)sys_write(fd, b, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static long read_some(int fd, void *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        long r = (long)sys_read(fd, (uint8_t *)p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

/* 1 when a cached K/V value is NaN or Inf: FP16 values, or the FP16 scale
 * of each Q8_0 block (its int8 quants are always finite). A checksum only
 * proves the bytes are the ones written; this proves they are numbers. */
static int kv_nonfinite(const pl_context *c, const uint8_t *p, size_t bytes) {
    size_t step = c->kv_type == PL_TYPE_Q8_0 ? sizeof(block_q8_0) : sizeof(pl_half);
    for (size_t i = 0; i + sizeof(pl_half) <= bytes; i += step) {
        pl_half h;
        memcpy(&h, p + i, sizeof h);
        if ((h & 0x7C00) == 0x7C00) return 1;
    }
    return 0;
}

/* ---- saving ------------------------------------------------------------ */

/* The file a save replaces: path with its symlinks followed by hand
 * (realpath needs the target to exist, and a dangling link names the file
 * to create). *exists tells whether it is there, *st what it is. */
static int resolve_target(const char *path, char *out, size_t cap, sys_stat *st, int *exists) {
    if (strlen(path) >= cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(out, path);
#ifdef _WIN32
    *exists = sys_stat_path(out, st) == 0;
    if (!*exists && errno != ENOENT) return -1;
    return 0;
#else
    for (int depth = 0; depth < 40; depth++) {
        if (lstat(out, st) != 0) {
            if (errno != ENOENT) return -1;
            *exists = 0;
            return 0;
        }
        if (!S_ISLNK(st->st_mode)) {
            *exists = 1;
            return 0;
        }
        char link[4096];
        ssize_t n = readlink(out, link, sizeof link - 1);
        if (n < 0) return -1;
        link[n] = 0;
        if (link[0] == '/') {
            if ((size_t)n >= cap) {
                errno = ENAMETOOLONG;
                return -1;
            }
            strcpy(out, link);
        } else { /* relative to the directory holding the link */
            char *slash = strrchr(out, '/');
            size_t dir = slash ? (size_t)(slash - out) + 1 : 0;
            if (dir + (size_t)n >= cap) {
                errno = ENAMETOOLONG;
                return -1;
            }
            memcpy(out + dir, link, (size_t)n + 1);
        }
    }
    errno = ELOOP;
    return -1;
#endif
}

/* 1 when the file at path starts with the cache magic. */
static int is_cache_file(const char *path) {
    int fd = sys_open(path, OF_RDONLY | O_BIN | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return 0;
    char magic[8];
    long n = read_some(fd, magic, sizeof magic);
    sys_close(fd);
    return n == 8 && !memcmp(magic, CACHE_MAGIC, 8);
}

#ifndef _WIN32
/* Makes the rename durable: without it a crash can lose the new name. */
static int sync_dir_of(const char *file) {
    char dir[4096];
    const char *slash = strrchr(file, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == file) strcpy(dir, "/");
    else {
        size_t n = (size_t)(slash - file);
        if (n >= sizeof dir) return 0;
        memcpy(dir, file, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && (errno == EINVAL || errno == EBADF || errno == EROFS)) rc = 0; /* fs cannot sync dirs */
    close(fd);
    return rc;
}
#endif

int pl_cache_save(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, char *err, size_t errlen) {
    const pl_hparams *in = &c->m->hp; /* the shapes the KV layout follows */
    if (n_tokens <= 0 || n_tokens > c->n_ctx) return set_err(err, errlen, PL_ERR_ARG, "nothing to cache");

    char target[4096];
    sys_stat st;
    int exists = 0;
    if (resolve_target(path, target, sizeof target, &st, &exists))
        return set_err(err, errlen, PL_ERR_IO, "cannot write cache %s: %s", path, strerror(errno));
    if (exists && !IS_REG(st.st_mode))
        return set_err(err, errlen, PL_ERR_ARG, "%s is not a regular file; the cache was not saved", path);
    if (exists && st.st_size > 0 && !is_cache_file(target))
        return set_err(err, errlen, PL_ERR_ARG, "%s exists and is not a picolm cache; left untouched, the cache was not saved",
                       path);

    /* a temporary name beside the target, created exclusively (another
     * process saving the same cache gets its own) */
    char tmp[4200];
    int fd = -1;
    unsigned salt = (unsigned)time(NULL) ^ ((unsigned)(uintptr_t)&fd >> 4);
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        salt = salt * 1103515245u + 12345u;
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%08x", target, (long)sys_getpid(), salt);
        fd = sys_open(tmp, OF_WRONLY | OF_CREAT | OF_EXCL | O_NOFOLLOW | O_BIN | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) return set_err(err, errlen, PL_ERR_IO, "cannot write cache %s: %s", path, strerror(errno));
#ifndef _WIN32
    if (exists) (void)fchmod(fd, st.st_mode & 07777); /* keep the old file's permissions */
#endif

    /* header and ids, then each layer's and KV head's rows straight from
     * the cache (no copy of the KV state), the checksum running along */
    size_t hd = (size_t)c->head_dim;
    uint8_t hdr[HEADER_BYTES], *p = hdr;
    memcpy(p, CACHE_MAGIC, 8);
    p += 8;
    put32(&p, CACHE_VERSION);
    put32(&p, c->kv_type);
    put64(&p, model_fingerprint(c->m));
    put32(&p, (uint32_t)c->n_ctx);
    put32(&p, (uint32_t)in->n_layer);
    put32(&p, (uint32_t)in->n_head_kv);
    put32(&p, (uint32_t)hd);
    put32(&p, (uint32_t)n_tokens);
    uint64_t sum = fnv1a(FNV_INIT, hdr, sizeof hdr);
    int ok = write_all(fd, hdr, sizeof hdr) == 0;
    sum = fnv1a(sum, tokens, (size_t)n_tokens * 4);
    ok = ok && write_all(fd, tokens, (size_t)n_tokens * 4) == 0;
    for (int l = 0; ok && l < in->n_layer; l++)
        for (int h = 0; ok && h < in->n_head_kv; h++) {
            size_t base = pl_kv_off(c, 0, l, h, 0), n = (size_t)n_tokens * c->kv_row;
            sum = fnv1a(sum, c->kcache + base, n);
            sum = fnv1a(sum, c->vcache + base, n);
            ok = write_all(fd, c->kcache + base, n) == 0 && write_all(fd, c->vcache + base, n) == 0;
        }
    uint8_t tail[8], *t = tail;
    put64(&t, sum);
    ok = ok && write_all(fd, tail, 8) == 0;
    ok = ok && sys_fsync(fd) == 0;
    int saved_errno = errno;
    if (sys_close(fd) != 0 && ok) ok = 0, saved_errno = errno;
    if (!ok) {
        remove(tmp);
        return set_err(err, errlen, PL_ERR_IO, "cannot write cache %s: %s", path, strerror(saved_errno));
    }
#ifdef _WIN32
    ok = MoveFileExA(tmp, target, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) != 0;
    if (!ok) errno = EACCES;
#else
    ok = rename(tmp, target) == 0;
#endif
    if (!ok) {
        saved_errno = errno;
        remove(tmp);
        return set_err(err, errlen, PL_ERR_IO, "cannot replace cache %s: %s", path, strerror(saved_errno));
    }
#ifndef _WIN32
    if (sync_dir_of(target))
        return set_err(err, errlen, PL_ERR_IO, "cache %s written but its directory not synced: %s", path,
                       strerror(errno));
#endif
    return 0;
}

/* ---- loading ----------------------------------------------------------- */

int pl_cache_load(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, int *n_reused, char *err,
                  size_t errlen) {
    const pl_hparams *in = &c->m->hp; /* the shapes the KV layout follows */
    *n_reused = 0;
    /* O_NONBLOCK: a FIFO named as the cache must not block the run; it is
     * then refused as not a regular file */
    int fd = sys_open(path, OF_RDONLY | O_BIN | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return set_err(err, errlen, PL_ERR_IO, "no cache file %s yet", path);
        return set_err(err, errlen, PL_ERR_IO, "cannot read cache %s: %s", path, strerror(errno));
    }
    sys_stat st;
    if (sys_fstat(fd, &st) != 0 || !IS_REG(st.st_mode)) {
        sys_close(fd);
        return set_err(err, errlen, PL_ERR_FORMAT, "%s is not a regular file, so not a picolm cache", path);
    }
    uint8_t hdr[HEADER_BYTES];
    if (read_some(fd, hdr, sizeof hdr) != (long)sizeof hdr || memcmp(hdr, CACHE_MAGIC, 8)) {
        sys_close(fd);
        return set_err(err, errlen, PL_ERR_FORMAT, "%s is not a picolm cache file", path);
    }
    const uint8_t *q = hdr + 8;
    uint32_t version = get32(&q), kvt = get32(&q);
    uint64_t fp = get64(&q);
    uint32_t n_ctx = get32(&q), n_layer = get32(&q), n_head_kv = get32(&q), hd = get32(&q), n = get32(&q);
    const char *why = NULL;
    if (version != CACHE_VERSION) why = "an unsupported format version";
    else if (kvt != c->kv_type) why = "another KV cache type";
    else if (fp != model_fingerprint(c->m) || n_layer != (uint32_t)in->n_layer ||
             n_head_kv != (uint32_t)in->n_head_kv || hd != (uint32_t)c->head_dim)
        why = "another model";
    else if (n_ctx != (uint32_t)c->n_ctx) why = "another context length";
    else if (n == 0 || n > n_ctx) why = "a bad token count";
    if (why) {
        sys_close(fd);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s was made for %s", path, why);
    }
    /* the size the header implies, checked before allocating for it */
    size_t total = cache_bytes(c, (int)n);
    if ((unsigned long long)st.st_size != (unsigned long long)total) {
        sys_close(fd);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s is truncated or corrupt", path);
    }
    uint8_t *buf = malloc(total);
    if (!buf) {
        sys_close(fd);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory reading the cache");
    }
    memcpy(buf, hdr, sizeof hdr);
    long got = read_some(fd, buf + sizeof hdr, total - sizeof hdr);
    uint8_t extra;
    long more = read_some(fd, &extra, 1);
    sys_close(fd);
    const uint8_t *end = buf + total - 8;
    const uint8_t *kv = buf + HEADER_BYTES + (size_t)n * 4;
    if (got != (long)(total - sizeof hdr) || more != 0 || fnv1a(FNV_INIT, buf, total - 8) != get64(&end)) {
        free(buf);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s is truncated or corrupt", path);
    }
    if (kv_nonfinite(c, kv, (size_t)(buf + total - 8 - kv))) {
        free(buf);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s is corrupt: its KV values hold NaN or Inf", path);
    }
    /* the longest common prefix, less at least one token: the last prompt
     * token must be evaluated to produce the logits the first new token
     * comes from (however the rest is split, the bits are an uncached
     * run's: picolm.h). A prompt of one token reuses nothing. */
    const int32_t *ids = (const int32_t *)(buf + HEADER_BYTES);
    int lcp = 0;
    while (lcp < (int)n && lcp < n_tokens && ids[lcp] == tokens[lcp]) lcp++;
    if (lcp > n_tokens - 1) lcp = n_tokens - 1;
    if (lcp <= 0) {
        free(buf);
        return 0;
    }
    const uint8_t *p = kv;
    for (int l = 0; l < in->n_layer; l++)
        for (int h = 0; h < in->n_head_kv; h++) {
            size_t base = pl_kv_off(c, 0, l, h, 0), full = (size_t)n * c->kv_row;
            size_t use = (size_t)lcp * c->kv_row;
            memcpy(c->kcache + base, p, use);
            p += full;
            memcpy(c->vcache + base, p, use);
            p += full;
        }
    free(buf);
    pl_seq_set_tokens(c, 0, tokens, lcp); /* sequence 0 now holds them */
    *n_reused = lcp;
    return 0;
}
