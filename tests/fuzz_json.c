/* fuzz_json.c - libFuzzer target for src/json.c: any bytes through the
 * reader; what parses is written, read again and compared (equal DOMs, the
 * same text when written twice), integers checked against their doubles;
 * the bytes themselves written as a JSON string must always read back. The
 * seeds are tests/corpus/fuzz_json/. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* every number's exact integer reading agrees with strtod's double */
static void walk(const json_value *v) {
    if (v->type == JSON_NUMBER) {
        int64_t i;
        double x;
        int rc = json_as_int(v, &i);
        if (rc == JSON_OK && (double)i != v->num) abort();
        if (json_as_num(v, &x) == JSON_OK && !isfinite(x)) abort();
        if (rc == JSON_ERANGE && isfinite(v->num) && fabs(v->num) < 9.2e18) abort();
    }
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT)
        for (size_t k = 0; k < v->len; k++) {
            walk(&v->kids[k]);
            if (v->type == JSON_OBJECT && json_getn(v, v->kids[k].key, v->kids[k].keylen) != &v->kids[k])
                abort(); /* keys are unique after the duplicates are dropped */
        }
}

static int has_fffd(const char *s, size_t n) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (!memcmp(s + i, "\xef\xbf\xbd", 3)) return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size ? size : 1); /* exactly size bytes: ASan sees any overread */
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    json_limits lim = {0, 200, 0};
    json_value *a = NULL, *b = NULL;
    jw w1, w2;
    jw_init(&w1);
    jw_init(&w2);
    size_t off = 0;
    if (json_parse_ex(&a, buf, size, &lim, err, sizeof err, &off) == 0) {
        walk(a);
        jw_value(&w1, a);
        if (!jw_done(&w1)) abort();
        if (json_parse(&b, w1.buf, w1.len, &lim, err, sizeof err)) abort();
        if (!json_equal(a, b) || !json_equal(b, a)) abort();
        jw_value(&w2, b);
        if (w1.len != w2.len || memcmp(w1.buf, w2.buf, w1.len)) abort();
        /* a caller buffer holds a prefix of the same text */
        char small[17];
        jw w3;
        jw_init_fixed(&w3, small, sizeof small);
        jw_value(&w3, a);
        if (w3.len != w1.len || strncmp(small, w1.buf, sizeof small - 1)) abort();
        if ((jw_status(&w3) == JW_ETRUNC) != (w1.len >= sizeof small)) abort();
    } else {
        const char *at = strstr(err, "at offset ");
        if (strncmp(err, "json: ", 6) || strchr(err, '\n') || off > size) abort();
        if (at && strtoull(at + 10, NULL, 10) != off) abort(); /* the offset named is the one reported */
    }
    json_free(a);
    json_free(b);
    /* the raw bytes as a string: always valid JSON */
    jw_reset(&w1);
    jw_strn(&w1, buf, size);
    if (json_parse(&b, w1.buf, w1.len, NULL, err, sizeof err)) abort();
    if (b->type != JSON_STRING) abort();
    if ((b->len != size || memcmp(b->str, buf, size)) && !has_fffd(b->str, b->len))
        abort(); /* only U+FFFD for invalid UTF-8 may change the bytes */
    json_free(b);
    jw_free(&w1);
    jw_free(&w2);
    free(buf);
    return 0;
}
