/* grammar_impl.h - what the grammar files share, not public (the API is
 * grammar.h): the compiled program that gbnf.c builds from GBNF text and
 * grammar.c runs, the error formatter, the JSON machine's number check
 * (for json_schema.c), and three small byte helpers (static inline). */
#ifndef PICOLM_GRAMMAR_IMPL_H
#define PICOLM_GRAMMAR_IMPL_H

#include <stddef.h>
#include <stdint.h>

#define G_INF 0x3fffffff /* a length that is never reached: cannot finish */

/* The compiled program: rules of elements over bytes. */
enum { GE_END, GE_ALT, GE_BYTES, GE_REF };
typedef struct { int32_t kind, val; } gel;

typedef struct gprog {
    gel *el;            /* [n_el] every rule's alternatives, ALT-separated, END-terminated */
    int32_t *min_rest;  /* [n_el] bytes to finish the alternative from this element */
    int32_t *alt;       /* [n_alt] start element of each alternative, grouped by rule */
    int32_t *rule_alt;  /* [n_rules+1] rule r's alternatives: alt[rule_alt[r] .. rule_alt[r+1]) */
    uint32_t (*bset)[8];/* [n_bset] 256-bit byte sets */
    int n_el, n_alt, n_rules, n_bset, root;
} gprog;

/* GBNF text[0..len) -> *out (gbnf.c): 0, or -1 with the reason ("grammar:
 * line:col: ...") in err; *out is then empty. */
int pl_grammar_gbnf_compile(gprog *out, const char *text, size_t len, char *err, size_t errlen);

/* Frees the arrays of p and zeroes it (grammar.c). */
void pl_grammar_prog_free(gprog *p);

/* Formats the reason into err (when given). */
void pl_grammar_set_err(char *err, size_t errlen, const char *fmt, ...);

/* A JSON number at the start of s[0..n), read with the JSON mode's number
 * states: returns the bytes taken (up to the first byte that is not one of
 * "0123456789+-.eE" or cannot follow); *complete says they form a whole
 * number. */
size_t pl_grammar_json_number(const char *s, size_t n, int *complete);

static inline int j_is_ws(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Value of a hex digit, -1 if c is none. */
static inline int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Code point -> UTF-8 in o[0..4); returns the byte count. */
static inline int utf8_encode(uint32_t cp, unsigned char *o) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xC0 | cp >> 6); o[1] = (unsigned char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        o[2] = (unsigned char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
    o[3] = (unsigned char)(0x80 | (cp & 63));
    return 4;
}

#endif
