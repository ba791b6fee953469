/* gguf.c - bounds-checked GGUF reader.
 *
 * Every read goes through a cursor that knows the end of the buffer; every
 * count is range-checked against the bytes left before anything is
 * allocated, and every size computation is overflow-checked. The reader
 * checks tensor shapes against the type's block size (via quant.h) and each
 * tensor's offset + size against the file, so callers can use tensor.data
 * as is. It does not interpret the metadata. */
#include "gguf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

#define GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define GGUF_MAX_ARRAY_DEPTH 1  /* arrays of arrays are accepted one level deep */

typedef struct {
    const uint8_t *p, *end;
    char *err;
    size_t errlen;
} cursor;

static int fail(cursor *c, const char *fmt, ...) {
    if (c->err && c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static size_t left(const cursor *c) { return (size_t)(c->end - c->p); }

static int rd(cursor *c, void *dst, size_t n, const char *what) {
    if (left(c) < n) return fail(c, "truncated file: reading %s", what);
    memcpy(dst, c->p, n);
    c->p += n;
    return 0;
}

static int rd_u32(cursor *c, uint32_t *v, const char *what) { return rd(c, v, 4, what); }
static int rd_u64(cursor *c, uint64_t *v, const char *what) { return rd(c, v, 8, what); }

static int rd_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t n = 0;
    if (rd_u64(c, &n, what)) return -1;
    if (n > left(c)) return fail(c, "%s length %llu exceeds the file", what, (unsigned long long)n);
    s->ptr = (const char *)c->p;
    s->len = n;
    c->p += n;
    return 0;
}

static size_t vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Skip one value of type t (already read), validating it. */
static int skip_value(cursor *c, uint32_t t, int depth, const char *key) {
    size_t sz = vtype_size(t);
    if (sz) {
        if (left(c) < sz) return fail(c, "truncated file: value of '%s'", key);
        if (t == GGUF_BOOL && *c->p > 1) return fail(c, "bad bool value %u for '%s'", *c->p, key);
        c->p += sz;
        return 0;
    }
    if (t == GGUF_STRING) {
        gguf_str s;
        return rd_str(c, &s, "string value");
    }
    if (t == GGUF_ARRAY) {
        uint32_t at = 0;
        uint64_t n = 0;
        if (rd_u32(c, &at, "array type") || rd_u64(c, &n, "array length")) return -1;
        if (at >= GGUF_NVTYPES) return fail(c, "unknown array element type %u for '%s'", at, key);
        if (at == GGUF_ARRAY && depth >= GGUF_MAX_ARRAY_DEPTH)
            return fail(c, "arrays nested too deep in '%s'", key);
        size_t esz = vtype_size(at);
        if (esz) {
            if (n > left(c) / esz)
                return fail(c, "array '%s' of %llu elements exceeds the file", key, (unsigned long long)n);
            if (at == GGUF_BOOL)
                for (uint64_t i = 0; i < n; i++)
                    if (c->p[i] > 1) return fail(c, "bad bool value in array '%s'", key);
            c->p += n * esz;
            return 0;
        }
        /* strings or arrays: each takes at least 8 bytes */
        if (n > left(c) / 8)
            return fail(c, "array '%s' of %llu elements exceeds the file", key, (unsigned long long)n);
        for (uint64_t i = 0; i < n; i++)
            if (skip_value(c, at, depth + 1, key)) return -1;
        return 0;
    }
    return fail(c, "unknown value type %u for '%s'", t, key);
}

static int str_cmp(const void *a, const void *b) {
    const gguf_str *x = *(const gguf_str *const *)a, *y = *(const gguf_str *const *)b;
    size_t n = x->len < y->len ? (size_t)x->len : (size_t)y->len;
    int r = memcmp(x->ptr, y->ptr, n);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

/* Names are the first member of gguf_kv and gguf_tensor: sort pointers to
 * them and compare neighbours, O(n log n) even for hostile counts. */
static int find_duplicate(const void *arr, uint64_t n, size_t stride, cursor *c, const char *what) {
    if (n < 2) return 0;
    const gguf_str **v = malloc((size_t)n * sizeof *v);
    if (!v) return fail(c, "out of memory");
    for (uint64_t i = 0; i < n; i++) v[i] = (const gguf_str *)((const char *)arr + i * stride);
    qsort(v, (size_t)n, sizeof *v, str_cmp);
    int rc = 0;
    for (uint64_t i = 1; i < n && !rc; i++)
        if (!str_cmp(&v[i - 1], &v[i]))
            rc = fail(c, "duplicate %s '%.*s'", what, (int)(v[i]->len < 200 ? v[i]->len : 200), v[i]->ptr);
    free(v);
    return rc;
}

static int str_has_nul(gguf_str s) { return memchr(s.ptr, 0, (size_t)s.len) != NULL; }

int gguf_parse(gguf_file *g, const void *buf, size_t size, char *err, size_t errlen) {
    cursor c = {(const uint8_t *)buf, (const uint8_t *)buf, err, errlen};
    memset(g, 0, sizeof *g);
    if (err && errlen) err[0] = 0;
    if (!buf || size < 4) return fail(&c, "file too small to be GGUF (%zu bytes)", buf ? size : 0);
    c.end = c.p + size;
    g->base = (const uint8_t *)buf;
    g->size = size;

    uint32_t magic = 0;
    rd_u32(&c, &magic, "magic");
    if (magic != GGUF_MAGIC) return fail(&c, "not a GGUF file (bad magic)");
    if (rd_u32(&c, &g->version, "version")) return -1;
    if (g->version == 1) return fail(&c, "GGUF version 1 is not supported (only 2 and 3)");
    if (g->version != 2 && g->version != 3)
        return fail(&c, "unsupported GGUF version %u (only 2 and 3)", g->version);
    if (rd_u64(&c, &g->n_tensors, "tensor count") || rd_u64(&c, &g->n_kv, "metadata count")) return -1;
    /* each kv takes at least 8+1+4+1 bytes, each tensor info at least 8+4+8+4+8 */
    if (g->n_kv > left(&c) / 13)
        return fail(&c, "metadata count %llu exceeds the file", (unsigned long long)g->n_kv);
    if (g->n_tensors > left(&c) / 32)
        return fail(&c, "tensor count %llu exceeds the file", (unsigned long long)g->n_tensors);

    g->alignment = 32;
    if (g->n_kv) {
        g->kv = calloc((size_t)g->n_kv, sizeof *g->kv);
        if (!g->kv) { fail(&c, "out of memory"); goto fail; }
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        if (rd_str(&c, &kv->key, "metadata key")) goto fail;
        if (kv->key.len == 0 || str_has_nul(kv->key)) { fail(&c, "bad metadata key #%llu", (unsigned long long)i); goto fail; }
        char key[96];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 80 ? kv->key.len : 80), kv->key.ptr);
        if (rd_u32(&c, &kv->type, "metadata type")) goto fail;
        if (kv->type >= GGUF_NVTYPES) { fail(&c, "unknown metadata type %u for '%s'", kv->type, key); goto fail; }
        if (kv->type == GGUF_ARRAY) {
            const uint8_t *save = c.p;
            if (rd_u32(&c, &kv->arr_type, "array type") || rd_u64(&c, &kv->arr_n, "array length")) goto fail;
            kv->data = c.p;
            c.p = save;
        } else {
            kv->data = c.p;
        }
        if (skip_value(&c, kv->type, 0, key)) goto fail;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            if (kv->type != GGUF_UINT32) { fail(&c, "general.alignment must be uint32"); goto fail; }
            uint32_t a;
            memcpy(&a, kv->data, 4);
            if (a == 0 || (a & (a - 1)) || a > (1u << 20)) { fail(&c, "bad general.alignment %u", a); goto fail; }
            g->alignment = a;
        }
    }

    if (g->n_tensors) {
        g->tensors = calloc((size_t)g->n_tensors, sizeof *g->tensors);
        if (!g->tensors) { fail(&c, "out of memory"); goto fail; }
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (rd_str(&c, &t->name, "tensor name")) goto fail;
        if (t->name.len == 0 || t->name.len > 255 || str_has_nul(t->name)) {
            fail(&c, "bad tensor name #%llu", (unsigned long long)i);
            goto fail;
        }
        char name[300];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (rd_u32(&c, &t->n_dims, "tensor dims")) goto fail;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS) {
            fail(&c, "tensor '%s' has %u dimensions (1..4 allowed)", name, t->n_dims);
            goto fail;
        }
        uint64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne = 0;
            if (rd_u64(&c, &ne, "tensor shape")) goto fail;
            if (ne == 0 || ne > ((uint64_t)1 << 40)) {
                fail(&c, "tensor '%s' has bad dimension %llu", name, (unsigned long long)ne);
                goto fail;
            }
            if (nel > ((uint64_t)1 << 50) / ne) { fail(&c, "tensor '%s' is absurdly large", name); goto fail; }
            nel *= ne;
            t->ne[d] = (int64_t)ne;
        }
        if (rd_u32(&c, &t->type, "tensor type") || rd_u64(&c, &t->offset, "tensor offset")) goto fail;
        const pl_type_traits *tr = pl_type_traits_get(t->type);
        if (!tr || !tr->dot) {
            const char *tn = pl_type_name(t->type);
            if (tn)
                fail(&c, "tensor '%s' has unsupported type %s (type %u)", name, tn, t->type);
            else
                fail(&c, "tensor '%s' has unsupported type id %u", name, t->type);
            goto fail;
        }
        if (t->ne[0] % tr->blck) {
            fail(&c, "tensor '%s': row length %lld is not a multiple of the %s block size %d", name,
                 (long long)t->ne[0], tr->name, tr->blck);
            goto fail;
        }
        t->nbytes = nel / (uint64_t)tr->blck * tr->type_size; /* nel < 2^50, type_size < 2^9 */
        if (t->offset % g->alignment) {
            fail(&c, "tensor '%s' offset %llu is not aligned to %llu", name, (unsigned long long)t->offset,
                 (unsigned long long)g->alignment);
            goto fail;
        }
    }

    if (find_duplicate(g->kv, g->n_kv, sizeof *g->kv, &c, "metadata key") ||
        find_duplicate(g->tensors, g->n_tensors, sizeof *g->tensors, &c, "tensor name"))
        goto fail;

    /* data section starts at the next multiple of alignment */
    uint64_t pos = (uint64_t)(c.p - g->base);
    uint64_t data = (pos + g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = data;
    if (g->n_tensors && data > size) { fail(&c, "truncated file: tensor data section is missing"); goto fail; }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        uint64_t avail = size - data;
        if (t->offset > avail || t->nbytes > avail - t->offset) {
            fail(&c, "truncated file: tensor '%.*s' (offset %llu, %llu bytes) extends past the end", (int)t->name.len,
                 t->name.ptr, (unsigned long long)t->offset, (unsigned long long)t->nbytes);
            goto fail;
        }
        t->data = g->base + data + t->offset;
    }
    return 0;
fail:
    gguf_free(g);
    return -1;
}

void gguf_free(gguf_file *g) {
    if (!g) return;
    free(g->kv);
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

int gguf_str_eq(gguf_str s, const char *z) {
    size_t n = strlen(z);
    return s.len == n && memcmp(s.ptr, z, n) == 0;
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

/* Numeric value at p of type t as double; sets *ok=0 for non-numeric types. */
static double num_at(const uint8_t *p, uint32_t t, int *ok) {
    *ok = 1;
    switch (t) {
    case GGUF_UINT8: return *p;
    case GGUF_INT8: return (int8_t)*p;
    case GGUF_BOOL: return *p;
    case GGUF_UINT16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_INT16: { int16_t v; memcpy(&v, p, 2); return v; }
    case GGUF_UINT32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_INT32: { int32_t v; memcpy(&v, p, 4); return v; }
    case GGUF_FLOAT32: { float v; memcpy(&v, p, 4); return v; }
    case GGUF_UINT64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case GGUF_INT64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case GGUF_FLOAT64: { double v; memcpy(&v, p, 8); return v; }
    default: *ok = 0; return 0;
    }
}

static int is_int_type(uint32_t t) {
    return t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_UINT16 || t == GGUF_INT16 || t == GGUF_UINT32 ||
           t == GGUF_INT32 || t == GGUF_UINT64 || t == GGUF_INT64;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 1;
    if (!is_int_type(kv->type)) return -1;
    int ok;
    double v = num_at(kv->data, kv->type, &ok);
    if (v < 0 || v > 4294967295.0) return -1;
    *out = (uint32_t)v;
    return 0;
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 1;
    if (kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64 && !is_int_type(kv->type)) return -1;
    int ok;
    *out = (float)num_at(kv->data, kv->type, &ok);
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 1;
    if (kv->type != GGUF_BOOL && !is_int_type(kv->type)) return -1;
    int ok;
    *out = num_at(kv->data, kv->type, &ok) != 0;
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 1;
    if (kv->type != GGUF_STRING) return -1;
    uint64_t n = 0;
    memcpy(&n, kv->data, 8);
    out->ptr = (const char *)kv->data + 8;
    out->len = n;
    return 0;
}

void gguf_arr_strings(const gguf_kv *kv, gguf_str *out) {
    const uint8_t *p = kv->data;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        uint64_t n = 0;
        memcpy(&n, p, 8);
        out[i].ptr = (const char *)p + 8;
        out[i].len = n;
        p += 8 + n;
    }
}

double gguf_arr_num(const gguf_kv *kv, uint64_t i) {
    size_t sz = vtype_size(kv->arr_type);
    if (kv->type != GGUF_ARRAY || !sz || i >= kv->arr_n) return 0;
    int ok;
    return num_at(kv->data + i * sz, kv->arr_type, &ok);
}
