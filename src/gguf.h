/* gguf.h - bounds-checked GGUF (v2, v3) reader over a (pointer, length) view.
 *
 * gguf_parse() validates the whole header, metadata and tensor table before
 * returning: after it succeeds every string, array and tensor it describes
 * lies inside the buffer. It knows nothing about models; it does not copy
 * tensor data (tensor.data points into the caller's buffer). */
#ifndef PICOLM_GGUF_H
#define PICOLM_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12, GGUF_NVTYPES
};

#define GGUF_MAX_DIMS 4

typedef struct gguf_str {
    const char *ptr; /* not NUL-terminated: points into the buffer */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;       /* enum gguf_vtype */
    uint32_t arr_type;   /* element type when type == GGUF_ARRAY */
    uint64_t arr_n;      /* element count when type == GGUF_ARRAY */
    const uint8_t *data; /* the value (or first array element) in the buffer */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] = row length (innermost); unused dims = 1 */
    uint32_t type;             /* ggml type id, known to quant.h */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;
    const void *data;          /* base + data_offset + offset */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset; /* start of the tensor data section */
} gguf_file;

/* 0 on success; on failure a negative code, the reason in err, and *g zeroed. */
int gguf_parse(gguf_file *g, const void *buf, size_t size, char *err, size_t errlen);
void gguf_free(gguf_file *g); /* accepts a zeroed or NULL file */

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Typed getters: 0 ok, 1 key absent, -1 present with an incompatible type.
 * Integers of any width convert when the value fits. */
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);
int gguf_get_f32(const gguf_file *g, const char *key, float *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, gguf_str *out);

/* Fill out[0..kv->arr_n) with the strings of a string array (validated). */
void gguf_arr_strings(const gguf_kv *kv, gguf_str *out);
/* Element i of a numeric array converted to double; 0 if not numeric. */
double gguf_arr_num(const gguf_kv *kv, uint64_t i);
/* 1 if the two equal a NUL-terminated string. */
int gguf_str_eq(gguf_str s, const char *c);

#endif
