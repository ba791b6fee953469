/* state.c - the prompt cache: the KV state of a processed prompt saved to a
 * file and reused by a later run for the longest common token prefix.
 *
 * File layout (little-endian):
 *   "PLKVCACH" | u32 version | u32 KV type (ggml id: 1 F16, 8 Q8_0) | u64 model fingerprint
 *   | u32 n_ctx, n_layer, n_head_kv, head_dim | u32 n_tokens | i32 tokens[]
 *   | for each layer, KV head: K rows [n_tokens], V rows [n_tokens] in the KV type
 *   | u64 FNV-1a checksum of everything before it.
 * The fingerprint hashes the GGUF header, metadata and tensor table, so a
 * cache made with another model (or another quantization) is refused. A
 * save goes to a temporary file renamed over the old one: an interrupted
 * run never leaves a half-written cache. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    const pl_model_info *in = &c->m->info;
    size_t kv = (size_t)in->n_layer * in->n_head_kv * 2 * (size_t)n_tokens * c->kv_row;
    return HEADER_BYTES + (size_t)n_tokens * 4 + kv + 8;
}

int pl_cache_save(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, char *err, size_t errlen) {
    const pl_model_info *in = &c->m->info;
    if (n_tokens <= 0 || n_tokens > c->n_ctx) return set_err(err, errlen, PL_ERR_ARG, "nothing to cache");
    size_t total = cache_bytes(c, n_tokens), hd = (size_t)c->head_dim;
    uint8_t *buf = malloc(total), *p = buf;
    if (!buf) return set_err(err, errlen, PL_ERR_NOMEM, "out of memory for the cache file");
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
    memcpy(p, tokens, (size_t)n_tokens * 4);
    p += (size_t)n_tokens * 4;
    for (int l = 0; l < in->n_layer; l++)
        for (int h = 0; h < in->n_head_kv; h++) {
            size_t base = (((size_t)l * in->n_head_kv + h) * c->n_ctx) * c->kv_row, n = (size_t)n_tokens * c->kv_row;
            memcpy(p, c->kcache + base, n);
            p += n;
            memcpy(p, c->vcache + base, n);
            p += n;
        }
    put64(&p, fnv1a(FNV_INIT, buf, (size_t)(p - buf)));

    /* write beside the target, then rename over it */
    char tmp[4096];
#ifdef _WIN32
    snprintf(tmp, sizeof tmp, "%s.tmp%d", path, _getpid());
#else
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
#endif
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(buf, 1, total, f) == total;
    if (f) ok = fflush(f) == 0 && ok;
#ifndef _WIN32
    if (f && ok) ok = fsync(fileno(f)) == 0;
#endif
    if (f && fclose(f) != 0) ok = 0;
    free(buf);
    if (!ok) {
        remove(tmp);
        return set_err(err, errlen, PL_ERR_IO, "cannot write cache %s", tmp);
    }
#ifdef _WIN32
    ok = MoveFileExA(tmp, path, MOVEFILE_REPLACE_EXISTING) != 0;
#else
    ok = rename(tmp, path) == 0;
#endif
    if (!ok) {
        remove(tmp);
        return set_err(err, errlen, PL_ERR_IO, "cannot replace cache %s", path);
    }
    return 0;
}

int pl_cache_load(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, int *n_reused, char *err,
                  size_t errlen) {
    const pl_model_info *in = &c->m->info;
    *n_reused = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return set_err(err, errlen, PL_ERR_IO, "no cache file %s yet", path);
    uint8_t hdr[HEADER_BYTES];
    if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || memcmp(hdr, CACHE_MAGIC, 8)) {
        fclose(f);
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
        fclose(f);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s was made for %s", path, why);
    }
    size_t total = cache_bytes(c, (int)n);
    uint8_t *buf = malloc(total);
    if (!buf) {
        fclose(f);
        return set_err(err, errlen, PL_ERR_NOMEM, "out of memory reading the cache");
    }
    memcpy(buf, hdr, sizeof hdr);
    size_t got = fread(buf + sizeof hdr, 1, total - sizeof hdr, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    const uint8_t *end = buf + total - 8;
    if (got != total - sizeof hdr || extra || fnv1a(FNV_INIT, buf, total - 8) != get64(&end)) {
        free(buf);
        return set_err(err, errlen, PL_ERR_FORMAT, "cache %s is truncated or corrupt", path);
    }
    /* the longest common prefix, less at least two tokens: the last prompt
     * token must be evaluated to produce the logits the first new token
     * comes from, and a lone token would run the one-token kernels instead
     * of the batched ones an uncached run uses for it (pl_eval), so the
     * logits could differ in their last bits */
    const int32_t *ids = (const int32_t *)(buf + HEADER_BYTES);
    int lcp = 0;
    while (lcp < (int)n && lcp < n_tokens && ids[lcp] == tokens[lcp]) lcp++;
    if (lcp > n_tokens - 2) lcp = n_tokens - 2;
    const uint8_t *p = buf + HEADER_BYTES + (size_t)n * 4;
    for (int l = 0; l < in->n_layer; l++)
        for (int h = 0; h < in->n_head_kv; h++) {
            size_t base = (((size_t)l * in->n_head_kv + h) * c->n_ctx) * c->kv_row, full = (size_t)n * c->kv_row;
            size_t use = (size_t)lcp * c->kv_row;
            memcpy(c->kcache + base, p, use);
            p += full;
            memcpy(c->vcache + base, p, use);
            p += full;
        }
    free(buf);
    *n_reused = lcp > 0 ? lcp : 0;
    return 0;
}
