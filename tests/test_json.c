/* test_json.c - the JSON reader and writer (src/json.c): JSONTestSuite-style
 * accept/refuse cases, the error messages, limits, typed getters, duplicate
 * keys, and round trips reader -> writer -> reader. Needs no test data. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "json.h"

static int parses(const char *s, size_t n) {
    json_value *v;
    char err[160];
    int rc = json_parse(&v, s, n, NULL, err, sizeof err);
    json_free(v);
    return rc == 0;
}

/* Parse, write, parse again: equal DOMs, and the second writing is the
 * same text as the first (the writer is canonical for a DOM). */
static int round_trip(const char *s, size_t n) {
    json_value *a = NULL, *b = NULL, *c = NULL;
    char err[160];
    int ok = 0;
    jw w1, w2;
    jw_init(&w1);
    jw_init(&w2);
    if (json_parse(&a, s, n, NULL, err, sizeof err)) goto done;
    jw_value(&w1, a);
    if (!jw_done(&w1)) goto done;
    if (json_parse(&b, w1.buf, w1.len, NULL, err, sizeof err)) goto done;
    jw_value(&w2, b);
    if (json_parse(&c, w2.buf, w2.len, NULL, err, sizeof err)) goto done;
    ok = json_equal(a, b) && json_equal(b, c) && w1.len == w2.len && !memcmp(w1.buf, w2.buf, w1.len);
done:
    json_free(a);
    json_free(b);
    json_free(c);
    jw_free(&w1);
    jw_free(&w2);
    return ok;
}

#define S(lit) lit, sizeof(lit) - 1

static const struct {
    const char *s;
    size_t n;
} valid[] = {
    {S("[]")}, {S("{}")}, {S("[1]")}, {S("\"x\"")}, {S("123")}, {S("-0")}, {S("0.5e-3")},
    {S("1E+2")}, {S("[-1]")}, {S("true")}, {S("false")}, {S("null")}, {S(" \t\r\n[null] \n")},
    {S("{\"a\":\"b\"}")}, {S("\"\\u0000\"")}, {S("\"\\uD834\\uDD1E\"")}, {S("\"\\u00e9\"")},
    {S("\"\xc3\xa9\"")}, {S("\"\\/\\\\\\\"\\b\\f\\n\\r\\t\"")}, {S("[1e400]")}, {S("[-1e400]")},
    {S("[123e-10000000]")}, {S("\"\xe2\x80\xa8\"")}, {S("\"\xf4\x8f\xbf\xbf\"")},
    {S("[[[[[[[[[[]]]]]]]]]]")}, {S("{\"a\":[{\"b\":{}},[],\"\",0]}")}, {S("[0e1,0E-1,-0.0e+0]")},
    {S("{\"\":0}")}, {S("[\"\x7f\"]")}, {S("{\"a\":1,\"a\":2}")},
    {S("123456789012345678901234567890")}, {S("\"\\uFFFF\\uDBFF\\uDFFF\"")},
};

static const struct {
    const char *s;
    size_t n;
} invalid[] = {
    {S("[1,]")}, {S("{\"a\":1,}")}, {S("[01]")}, {S("[-]")}, {S("-")}, {S("[.5]")}, {S("[1.]")},
    {S("[1e]")}, {S("[1e+]")}, {S("[+1]")}, {S("[0x1]")}, {S("[\"\\uD800\"]")}, {S("[\"\\uDC00\"]")},
    {S("[\"\\uD800\\u0041\"]")}, {S("[\"\\uD800\\\"]")}, {S("[\"a\x01\"]")}, {S("[\"\t\"]")},
    {S("[\"\n\"]")}, {S("[")}, {S("]")}, {S("")}, {S(" ")}, {S("\xef\xbb\xbf[]")}, {S("[1] x")},
    {S("[1]]")}, {S("{\"a\"}")}, {S("{1:2}")}, {S("{'a':1}")}, {S("[NaN]")}, {S("[Infinity]")},
    {S("[-Infinity]")}, {S("[tru]")}, {S("nul")}, {S("[\"\\x\"]")}, {S("[\"\\u12\"]")},
    {S("[\"\\u12G4\"]")}, {S("[\"\xff\"]")}, {S("[\"\xc0\x80\"]")}, {S("[\"\xed\xa0\x80\"]")},
    {S("[\"\xe2\x82\"]")}, {S("[\"\xf4\x90\x80\x80\"]")}, {S("[\"\x80\"]")}, {S("[1 2]")},
    {S("[\"a\" \"b\"]")}, {S("/* */ []")}, {S("[\0]")}, {S("\"abc")}, {S("[1,,2]")},
    {S("{\"a\":1 \"b\":2}")}, {S("{\"a\" 1}")}, {S("{\"a\":}")}, {S("[,1]")}, {S("{,}")},
    {S("\"\\")}, {S("[\"\\u\"]")}, {S("01")}, {S("-01")}, {S("1.e1")}, {S("[\f]")},
    {S("[\xc2\xa0]")}, {S("[1]\0")}, {S("\x00")}, {S("[True]")}, {S("{\"a\":1}}")},
    {S("[\"\\uDBFF\\uDBFF\"]")}, {S("'a'")}, {S("[1;2]")}, {S("{\"a\"::1}")},
};

/* The error message of parsing s (a static buffer). */
static const char *errof(const char *s, size_t n, const json_limits *lim) {
    static char err[200];
    json_value *v;
    err[0] = 0;
    if (!json_parse(&v, s, n, lim, err, sizeof err)) {
        json_free(v);
        return "(parsed)";
    }
    return err;
}

static void test_suite(void) {
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        CHECK(parses(valid[i].s, valid[i].n), "valid #%zu refused: %s", i,
              errof(valid[i].s, valid[i].n, NULL));
        CHECK(round_trip(valid[i].s, valid[i].n), "valid #%zu: round trip differs", i);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++) {
        const char *e = errof(invalid[i].s, invalid[i].n, NULL);
        CHECK(!strncmp(e, "json: ", 6) && !strchr(e, '\n'), "invalid #%zu: '%s'", i, e);
        /* json_parse_ex's offset is the one the message names */
        json_value *v = NULL;
        char err[200];
        size_t off = 12345;
        int rc = json_parse_ex(&v, invalid[i].s, invalid[i].n, NULL, err, sizeof err, &off);
        const char *at = strstr(err, "at offset ");
        CHECK(rc == -1 && !v && off <= invalid[i].n && (!at || strtoul(at + 10, NULL, 10) == off),
              "invalid #%zu: offset %zu for '%s'", i, off, err);
    }
    size_t off = 0;
    json_value *v = NULL;
    CHECK(json_parse_ex(&v, S("[1,,2]"), NULL, NULL, 0, &off) == -1 && off == 3, "offset of ',': %zu", off);
    CHECK(json_parse_ex(&v, S("{\"a\":\n  01}"), NULL, NULL, 0, &off) == -1 && off == 8, "offset of 01: %zu", off);
    CHECK(json_parse_ex(&v, S("[1]"), NULL, NULL, 0, &off) == 0 && off == 0, "no error, offset 0");
    json_free(v);
}

static void test_messages(void) {
    const char *e;
    e = errof(S("[1,,2]"), NULL);
    CHECK(!strcmp(e, "json: unexpected ',' at offset 3"), "got '%s'", e);
    e = errof(S("\"ab\xff\""), NULL);
    CHECK(!strcmp(e, "json: invalid UTF-8 at offset 3"), "got '%s'", e);
    e = errof(S("{\"a\":1,}"), NULL);
    CHECK(strstr(e, "trailing comma") && strstr(e, "offset 7"), "got '%s'", e);
    e = errof(S("[01]"), NULL);
    CHECK(strstr(e, "leading zero") && strstr(e, "offset 1"), "got '%s'", e);
    e = errof(S("[\"\\uD800\"]"), NULL);
    CHECK(strstr(e, "lone surrogate") && strstr(e, "offset 2"), "got '%s'", e);
    e = errof(S("[\"a\x01\"]"), NULL);
    CHECK(strstr(e, "control character 0x01") && strstr(e, "offset 3"), "got '%s'", e);
    e = errof(S("\xef\xbb\xbf[]"), NULL);
    CHECK(strstr(e, "byte order mark"), "got '%s'", e);
    e = errof(S("[1] x"), NULL);
    CHECK(!strcmp(e, "json: unexpected 'x' at offset 4 after the value"), "got '%s'", e);
    e = errof(S("[1"), NULL);
    CHECK(!strcmp(e, "json: unexpected end of input at offset 2"), "got '%s'", e);
    e = errof(S("[\0]"), NULL);
    CHECK(!strcmp(e, "json: unexpected byte 0x00 at offset 1"), "got '%s'", e);
    e = errof(S(""), NULL);
    CHECK(strstr(e, "empty"), "got '%s'", e);
    e = errof(S("\"abc"), NULL);
    CHECK(strstr(e, "unterminated string"), "got '%s'", e);
    e = errof(S("[\"\\q\"]"), NULL);
    CHECK(!strcmp(e, "json: invalid escape '\\q' at offset 2"), "got '%s'", e);
}

static void test_limits(void) {
    char deep[2100];
    for (int d = 63; d <= 65; d++) {
        for (int i = 0; i < d; i++) deep[i] = '[', deep[2 * d - 1 - i] = ']';
        const char *e = errof(deep, (size_t)(2 * d), NULL);
        if (d <= 64) CHECK(!strcmp(e, "(parsed)"), "depth %d: %s", d, e);
        else CHECK(strstr(e, "json: nesting deeper than 64"), "depth %d: %s", d, e);
    }
    json_limits L = {0, 3, 0};
    CHECK(!strcmp(errof(S("[[[1]]]"), &L), "(parsed)"), "depth 3");
    CHECK(strstr(errof(S("[[[[1]]]]"), &L), "deeper than 3"), "depth 4 over 3");
    /* an object counts as a level too */
    CHECK(strstr(errof(S("[{\"a\":[{}]}]"), &L), "deeper than 3"), "objects nest");
    /* the cap: 1000 levels at most, whatever is asked */
    L = (json_limits){0, 1000000, 0};
    for (int i = 0; i < 1001; i++) deep[i] = '[', deep[2001 - i] = ']';
    CHECK(strstr(errof(deep, 2002, &L), "deeper than 1000"), "depth cap");
    CHECK(!strcmp(errof(deep + 1, 2000, &L), "(parsed)"), "1000 levels");
    L = (json_limits){10, 0, 0};
    CHECK(!strcmp(errof(S("[1,2,3,4]"), &L), "(parsed)"), "10 bytes");
    CHECK(strstr(errof(S("[1,2,3,4,5]"), &L), "over the limit of 10"), "11 bytes");
    L = (json_limits){0, 0, 4};
    CHECK(!strcmp(errof(S("[1,2,3]"), &L), "(parsed)"), "4 values");
    CHECK(strstr(errof(S("[1,2,3,4]"), &L), "more than 4 values"), "5 values");
    CHECK(strstr(errof(S("{\"a\":1,\"b\":[2,3]}"), &L), "more than 4 values"), "5 values in object");
}

static void test_dom(void) {
    const char doc[] = "{\"n\":5,\"f\":1.5,\"big\":9223372036854775808,\"max\":9223372036854775807,"
                       "\"min\":-9223372036854775808,\"low\":-9223372036854775809,\"e\":1e2,"
                       "\"e2\":1.5e1,\"s\":\"hot\",\"z\":null,\"t\":true,\"h\":1e400,\"x\":100.0,"
                       "\"frac\":1.25e1,\"tiny\":1e-5,\"zero\":-0e99999999999999999999,"
                       "\"exp\":12300e-2,\"huge\":1e19,\"nul\":\"a\\u0000b\",\"arr\":[1,\"two\",[3]],"
                       "\"d\":1,\"d\":{\"k\":2},\"u\":\"\\ud83d\\ude00\"}";
    json_value *v;
    char err[160];
    int rc = json_parse(&v, doc, strlen(doc), NULL, err, sizeof err);
    CHECK(rc == 0, "dom doc: %s", err);
    if (rc) return;
    int64_t i = 0;
    double x = 0;
    int b = 0;
    const char *s = NULL;
    size_t sl = 0;
    CHECK(v->type == JSON_OBJECT && v->len == 22, "members %zu (one duplicate dropped)", v->len);
    CHECK(json_get_int(v, "n", 7, &i) == JSON_OK && i == 5, "n");
    CHECK(json_get_int(v, "absent", 7, &i) == JSON_ABSENT && i == 7, "absent default");
    CHECK(json_get_int(v, "z", 8, &i) == JSON_ABSENT && i == 8, "null reads as absent");
    CHECK(json_get_int(v, "f", 0, &i) == JSON_ENOTINT, "1.5 not an integer");
    CHECK(json_get_int(v, "s", 0, &i) == JSON_ETYPE, "string for an integer");
    CHECK(json_get_int(v, "big", 0, &i) == JSON_ERANGE, "2^63");
    CHECK(json_get_int(v, "max", 0, &i) == JSON_OK && i == INT64_MAX, "INT64_MAX exact");
    CHECK(json_get_int(v, "min", 0, &i) == JSON_OK && i == INT64_MIN, "INT64_MIN exact");
    CHECK(json_get_int(v, "low", 0, &i) == JSON_ERANGE, "below INT64_MIN");
    CHECK(json_get_int(v, "e", 0, &i) == JSON_OK && i == 100, "1e2");
    CHECK(json_get_int(v, "e2", 0, &i) == JSON_OK && i == 15, "1.5e1");
    CHECK(json_get_int(v, "x", 0, &i) == JSON_OK && i == 100, "100.0");
    CHECK(json_get_int(v, "frac", 0, &i) == JSON_ENOTINT, "12.5");
    CHECK(json_get_int(v, "tiny", 0, &i) == JSON_ENOTINT, "1e-5");
    CHECK(json_get_int(v, "zero", 1, &i) == JSON_OK && i == 0, "-0e huge");
    CHECK(json_get_int(v, "exp", 0, &i) == JSON_OK && i == 123, "12300e-2");
    CHECK(json_get_int(v, "huge", 0, &i) == JSON_ERANGE, "1e19");
    CHECK(json_get_int(v, "h", 0, &i) == JSON_ERANGE, "1e400 as integer");
    CHECK(json_get_num(v, "h", 0, &x) == JSON_ERANGE, "1e400 as number");
    CHECK(json_get_num(v, "f", 0, &x) == JSON_OK && x == 1.5, "1.5");
    CHECK(json_get_num(v, "s", 0.7, &x) == JSON_ETYPE, "\"hot\" as a number");
    CHECK(json_get_num(v, "absent", 0.7, &x) == JSON_ABSENT && x == 0.7, "number default");
    CHECK(json_get_bool(v, "t", 0, &b) == JSON_OK && b == 1, "true");
    CHECK(json_get_bool(v, "n", 0, &b) == JSON_ETYPE, "number as bool");
    CHECK(json_get_str(v, "s", NULL, &s, &sl) == JSON_OK && sl == 3 && !strcmp(s, "hot"), "string");
    CHECK(json_get_str(v, "nul", NULL, &s, &sl) == JSON_OK && sl == 3 && !memcmp(s, "a\0b", 4),
          "embedded NUL");
    CHECK(json_get_str(v, "u", NULL, &s, &sl) == JSON_OK && sl == 4 && !strcmp(s, "\xf0\x9f\x98\x80"),
          "surrogate pair");
    CHECK(json_get_str(v, "absent", "dflt", &s, &sl) == JSON_ABSENT && !strcmp(s, "dflt") && sl == 4,
          "string default");
    CHECK(json_get_str(v, "n", NULL, &s, NULL) == JSON_ETYPE, "number as string");
    const json_value *a = json_get(v, "arr");
    CHECK(a && a->type == JSON_ARRAY && a->len == 3, "array");
    CHECK(json_at(a, 1) && json_at(a, 1)->type == JSON_STRING && !strcmp(json_at(a, 1)->str, "two"),
          "array index");
    CHECK(json_at(a, 3) == NULL && json_at(v, 0) == NULL, "index out of range / not an array");
    CHECK(json_at(json_at(a, 2), 0) && json_at(json_at(a, 2), 0)->num == 3, "nested index");
    const json_value *d = json_get(v, "d");
    CHECK(d && d->type == JSON_OBJECT && json_get(d, "k"), "duplicate: the last kept");
    CHECK(v->kids[v->len - 2].key && !strcmp(v->kids[v->len - 2].key, "d"), "kept at its place");
    CHECK(json_get(a, "x") == NULL && json_get(NULL, "x") == NULL, "get on non-object");
    CHECK(json_getn(v, "nul", 3) && json_getn(v, "nu", 2) == NULL, "getn");
    CHECK(!strcmp(json_type_name(JSON_STRING), "string") && !strcmp(json_type_name(JSON_BOOL), "boolean"),
          "type names");
    const json_value *f = json_get(v, "exp");
    CHECK(f && f->len == 8 && !strcmp(f->str, "12300e-2") && f->num == 123, "number text kept");
    json_free(v);

    /* duplicates in a large object (the hashed path), keys with NULs */
    char big[4096];
    size_t n = 0;
    n += (size_t)snprintf(big + n, sizeof big - n, "{");
    for (int k = 0; k < 100; k++) n += (size_t)snprintf(big + n, sizeof big - n, "\"k%d\":%d,", k, k);
    n += (size_t)snprintf(big + n, sizeof big - n, "\"k5\":500,\"k\\u00000\":1,\"k50\":5000,\"k5\":-5}");
    rc = json_parse(&v, big, n, NULL, err, sizeof err);
    CHECK(rc == 0, "big object: %s", err);
    if (!rc) {
        CHECK(v->len == 101, "big object: %zu members", v->len);
        CHECK(json_get_int(v, "k5", 0, &i) == JSON_OK && i == -5, "k5 last");
        CHECK(json_get_int(v, "k50", 0, &i) == JSON_OK && i == 5000, "k50 last");
        CHECK(json_get_int(v, "k99", 0, &i) == JSON_OK && i == 99, "k99");
        CHECK(json_getn(v, "k\0" "0", 3) && json_get(v, "k0") && json_get_int(v, "k0", 1, &i) == 0 && i == 0,
              "key with NUL is its own key");
        CHECK(!strcmp(v->kids[v->len - 1].key, "k5") && !strcmp(v->kids[0].key, "k0"), "order");
        CHECK(round_trip(big, n), "big object round trip");
        json_free(v);
    }
}

static void test_writer(void) {
    jw w;
    jw_init(&w);
    jw_obj(&w);
    jw_key(&w, "id");
    jw_str(&w, "chat-1");
    jw_key(&w, "n");
    jw_int(&w, -42);
    jw_key(&w, "x");
    jw_num(&w, 0.1);
    jw_key(&w, "nan");
    jw_num(&w, NAN);
    jw_key(&w, "inf");
    jw_num(&w, -INFINITY);
    jw_key(&w, "a");
    jw_arr(&w);
    jw_bool(&w, 1);
    jw_bool(&w, 0);
    jw_null(&w);
    jw_num(&w, 3);
    jw_num(&w, -0.0);
    jw_num(&w, 1e21);
    jw_str(&w, NULL);
    jw_arr(&w);
    jw_arr_end(&w);
    jw_obj(&w);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_key(&w, "s");
    jw_strn(&w, "q\"b\\c\n\t\x01\x1f\x7f\xe2\x80\xa8/", 14);
    jw_obj_end(&w);
    const char *want = "{\"id\":\"chat-1\",\"n\":-42,\"x\":0.1,\"nan\":null,\"inf\":null,"
                       "\"a\":[true,false,null,3,-0,1e+21,null,[],{}],"
                       "\"s\":\"q\\\"b\\\\c\\n\\t\\u0001\\u001f\x7f\\u2028/\"}";
    CHECK(jw_done(&w) && !strcmp(w.buf, want), "writer: %s", w.buf);
    CHECK(parses(w.buf, w.len), "writer output parses");

    /* invalid UTF-8 -> U+FFFD per maximal ill-formed subpart */
    static const struct {
        const char *in, *out;
    } fx[] = {
        {"a\xff" "b", "\"a\xef\xbf\xbd" "b\""},
        {"\xe2\x82", "\"\xef\xbf\xbd\""},
        {"\xf0\x9f\x98x", "\"\xef\xbf\xbdx\""},
        {"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xc3\xa9\xf0\x9f\x98\x80", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
    };
    for (size_t k = 0; k < sizeof fx / sizeof *fx; k++) {
        jw_reset(&w);
        jw_str(&w, fx[k].in);
        CHECK(!strcmp(w.buf, fx[k].out), "fffd #%zu: %s", k, w.buf);
    }
    /* any bytes make a valid JSON string that reads back as them when they are valid UTF-8 */
    uint32_t r = 12345;
    for (int t = 0; t < 2000; t++) {
        char in[16];
        int len = t % 16;
        for (int k = 0; k < len; k++) {
            r = r * 1103515245u + 12345u;
            in[k] = (char)(r >> 16);
        }
        jw_reset(&w);
        jw_strn(&w, in, (size_t)len);
        json_value *v;
        char err[120];
        int rc = json_parse(&v, w.buf, w.len, NULL, err, sizeof err);
        CHECK(rc == 0, "escaped bytes did not parse: %s", err);
        if (!rc) json_free(v);
    }
    /* numbers: the shortest text that reads back as the same double */
    r = 777;
    for (int t = 0; t < 2000; t++) {
        uint64_t bits = 0;
        for (int k = 0; k < 4; k++) {
            r = r * 1103515245u + 12345u;
            bits = bits << 16 | (r >> 8 & 0xFFFF);
        }
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        jw_reset(&w);
        jw_num(&w, x);
        json_value *v;
        char err[120];
        int rc = json_parse(&v, w.buf, w.len, NULL, err, sizeof err);
        CHECK(rc == 0 && v->type == JSON_NUMBER && v->num == x, "number %.17g -> %s", x, w.buf);
        if (!rc) json_free(v);
    }
    jw_reset(&w);
    jw_num(&w, 0.3);
    CHECK(!strcmp(w.buf, "0.3"), "0.3 -> %s", w.buf);
    jw_reset(&w);
    jw_int(&w, INT64_MIN);
    CHECK(!strcmp(w.buf, "-9223372036854775808"), "INT64_MIN -> %s", w.buf);

    /* misuse */
    jw_reset(&w);
    jw_obj(&w);
    jw_int(&w, 1);
    CHECK(jw_status(&w) == JW_ESTATE, "value without key");
    jw_reset(&w);
    jw_arr(&w);
    jw_obj_end(&w);
    CHECK(jw_status(&w) == JW_ESTATE, "} closing [");
    jw_reset(&w);
    jw_key(&w, "k");
    CHECK(jw_status(&w) == JW_ESTATE, "key at top level");
    jw_reset(&w);
    jw_obj(&w);
    jw_key(&w, "k");
    jw_obj_end(&w);
    CHECK(jw_status(&w) == JW_ESTATE, "key without value");
    jw_reset(&w);
    jw_arr(&w);
    CHECK(jw_status(&w) == JW_OK && !jw_done(&w), "open array is not done");
    jw_reset(&w);
    for (int k = 0; k < JW_MAX_DEPTH; k++) jw_arr(&w);
    CHECK(jw_status(&w) == JW_OK, "JW_MAX_DEPTH levels");
    jw_arr(&w);
    CHECK(jw_status(&w) == JW_ESTATE, "past JW_MAX_DEPTH");
    jw_free(&w);

    /* a caller buffer: truncation reported, the needed length counted */
    char small[8];
    jw_init_fixed(&w, small, sizeof small);
    jw_arr(&w);
    jw_str(&w, "abc");
    jw_arr_end(&w);
    CHECK(jw_status(&w) == JW_OK && !strcmp(small, "[\"abc\"]") && w.len == 7, "fits: %s", small);
    jw_reset(&w);
    jw_arr(&w);
    jw_str(&w, "abcdef");
    jw_arr_end(&w);
    CHECK(jw_status(&w) == JW_ETRUNC && w.len == 10 && strlen(small) == 7, "truncated: len %zu", w.len);
    jw_init_fixed(&w, small, 0);
    jw_null(&w);
    CHECK(jw_status(&w) == JW_ETRUNC && w.len == 4, "zero-size buffer");
}

int main(void) {
    test_suite();
    test_messages();
    test_limits();
    test_dom();
    test_writer();
    return t_summary("test_json");
}
