/* json.h - RFC 8259 JSON for the server (internal, not public API).
 *
 * Reader: strict JSON text -> a read-only DOM held in ONE allocation
 * (json_free frees it all). Strings are unescaped to UTF-8 (\uXXXX
 * surrogate pairs joined; lone surrogates, invalid UTF-8, control
 * characters, a BOM, trailing commas, leading zeros ... refused) and keep
 * their length, so "\u0000" is representable; every string is also
 * NUL-terminated. Numbers keep their JSON text and a double. Caller-set
 * limits bound the input bytes, the nesting and the number of values; a
 * refusal is one line with the byte offset ("json: unexpected ',' at
 * offset 17"). Duplicate object keys: the LAST one wins (as in Python,
 * JavaScript and Go, so {"temperature":1,"temperature":"hot"} is "hot");
 * the earlier members are dropped from the DOM, so an object's members have
 * unique keys, in document order (the kept one at its own place).
 *
 * Writer (jw_*): compact JSON appended to a growable buffer or a caller
 * buffer (truncation reported, snprintf-style), commas placed for you.
 * Strings are escaped and invalid UTF-8 becomes U+FFFD, so the output is
 * always valid JSON; NaN and infinities are written as null.
 * Not here: JSON Schema (json_schema.c), constrained decoding (grammar.c). */
#ifndef PICOLM_JSON_H
#define PICOLM_JSON_H

#include <stddef.h>
#include <stdint.h>

enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

typedef struct json_value json_value;
struct json_value {
    const char *key;  /* member of an object: its name (unescaped, NUL-terminated); else NULL */
    size_t keylen;    /* bytes in key */
    const char *str;  /* STRING: unescaped bytes; NUMBER: its JSON text (both NUL-terminated) */
    size_t len;       /* STRING/NUMBER: bytes in str; ARRAY/OBJECT: number of children */
    json_value *kids; /* ARRAY/OBJECT: [len] children, in document order */
    double num;       /* NUMBER: nearest double (+-inf when out of range); BOOL: 0 or 1 */
    int type;         /* JSON_* */
};

/* Limits on a document; a zero field takes the default in brackets. */
typedef struct json_limits {
    size_t max_bytes; /* input length [16 MiB] */
    int max_depth;    /* nesting of arrays and objects [64]; at most JSON_DEPTH_CAP */
    size_t max_nodes; /* values: every member's and item's value is one [1 << 20] */
} json_limits;
/* The reader recurses once a level, ~200 bytes of stack at -O2: the cap's
 * 1000 levels need ~200 KB (more than musl's 128 KB thread stacks; the
 * default 64 needs ~13 KB). */
#define JSON_DEPTH_CAP 1000

/* Parses s[0..n) (need not be NUL-terminated): 0 and *out = the root, or
 * -1 with the reason in err and *out = NULL. lim may be NULL (defaults). */
int json_parse(json_value **out, const char *s, size_t n, const json_limits *lim, char *err,
               size_t errlen);
/* The same; on failure *err_offset (may be NULL) is the byte offset the
 * message names (json_schema.c turns it into line:col). */
int json_parse_ex(json_value **out, const char *s, size_t n, const json_limits *lim, char *err,
                  size_t errlen, size_t *err_offset);
void json_free(json_value *root); /* accepts NULL */

const char *json_type_name(int type); /* "null", "boolean", "number", "string", "array", "object" */

/* Lookups: NULL when absent (or obj/arr is not an object/array). */
const json_value *json_get(const json_value *obj, const char *key);
const json_value *json_getn(const json_value *obj, const char *key, size_t keylen);
const json_value *json_at(const json_value *arr, size_t i);

/* Typed reads. Value-level (json_as_*): JSON_OK, or a negative code and
 * *out untouched. Member-level (json_get_*): also JSON_ABSENT with
 * *out = def when the key is missing or its value is null (OpenAI's
 * optional fields are nullable), so the server tells a default from a
 * wrong type ("temperature": "hot" -> JSON_ETYPE -> 400). */
enum {
    JSON_OK = 0,
    JSON_ABSENT = 1,
    JSON_ETYPE = -1,  /* present, of another type */
    JSON_ENOTINT = -2, /* json_*_int: a number with a fractional part (1.5; 1.0 and 1e2 are integers) */
    JSON_ERANGE = -3, /* outside int64 (integers) or outside double's range (1e400) */
};
int json_as_bool(const json_value *v, int *out);
int json_as_num(const json_value *v, double *out);
int json_as_int(const json_value *v, int64_t *out); /* exact, from the text: no rounding */
int json_as_str(const json_value *v, const char **out, size_t *len); /* len may be NULL */
int json_get_bool(const json_value *obj, const char *key, int def, int *out);
int json_get_num(const json_value *obj, const char *key, double def, double *out);
int json_get_int(const json_value *obj, const char *key, int64_t def, int64_t *out);
int json_get_str(const json_value *obj, const char *key, const char *def, const char **out,
                 size_t *len);

/* Deep equality (object members compared by key, in any order). */
int json_equal(const json_value *a, const json_value *b);

/* ---- writer ---- */
#define JW_MAX_DEPTH 1024
enum { JW_OK = 0, JW_ETRUNC = -1, JW_ENOMEM = -2, JW_ESTATE = -3 };
typedef struct jw {
    char *buf;      /* the text, always NUL-terminated (fixed: within cap) */
    size_t len;     /* bytes of text produced (fixed mode: may exceed cap-1 when truncated) */
    size_t cap;
    int growable;   /* 1: buf is malloc'd by the writer (jw_free frees it) */
    int status;     /* JW_*: the first problem, sticky */
    int depth;      /* open arrays/objects */
    int after_key;  /* a key was written: its value comes next */
    uint8_t first[JW_MAX_DEPTH / 8]; /* bit per depth: the next item is the first */
    uint8_t isobj[JW_MAX_DEPTH / 8]; /* bit per depth: the container is an object */
} jw;

void jw_init(jw *w);                             /* growable; no allocation until written */
void jw_init_fixed(jw *w, char *buf, size_t cap); /* into buf[0..cap) */
void jw_reset(jw *w);                            /* empty again, buffer kept (one SSE chunk each) */
void jw_free(jw *w);                             /* growable: frees buf */
/* JW_OK, or the first problem: JW_ETRUNC (fixed buffer too small: len says
 * how much was needed), JW_ENOMEM, JW_ESTATE (misuse: a key outside an
 * object, a value without a key, unbalanced ends, nesting past JW_MAX_DEPTH). */
int jw_status(const jw *w);
/* Complete: OK and every container closed. */
int jw_done(const jw *w);

void jw_obj(jw *w);     /* { */
void jw_obj_end(jw *w); /* } */
void jw_arr(jw *w);     /* [ */
void jw_arr_end(jw *w); /* ] */
void jw_key(jw *w, const char *key);
void jw_keyn(jw *w, const char *key, size_t n);
void jw_str(jw *w, const char *s); /* NULL writes null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_num(jw *w, double x); /* shortest text that reads back as x; NaN/inf: null */
void jw_int(jw *w, int64_t x);
void jw_bool(jw *w, int b);
void jw_null(jw *w);
void jw_value(jw *w, const json_value *v); /* a DOM value; numbers keep their text */
/* Bytes appended verbatim (already-valid JSON text, or framing between
 * documents): the writer cannot vouch for them. */
void jw_raw(jw *w, const char *s, size_t n);

/* Appends to w the JSON string body (no quotes) of s[0..n), escaped, invalid
 * UTF-8 replaced by U+FFFD. */
void jw_escape(jw *w, const char *s, size_t n);

#endif
