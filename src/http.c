/* http.c - the incremental HTTP/1.1 request parser and the response writers.
 *
 * The parser is one byte-level state machine over the head (request line,
 * header fields) and the chunked framing, plus bulk copies for body data;
 * every decision depends only on the bytes seen so far, so the result is the
 * same for any split of the input. The head is copied into a buffer of
 * max_head bytes with NULs written over the delimiters, so the method,
 * target and header names and values are C strings that stay valid until
 * http_next. Headers are interpreted once the head is complete (framing,
 * Connection, Expect, Host). Not here: sockets, routing, the server loop. */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HTTP_DEF_HEAD ((size_t)16 << 10)
#define HTTP_DEF_TARGET ((size_t)4 << 10)
#define HTTP_DEF_HEADERS 64
#define HTTP_DEF_BODY ((size_t)1 << 20)
#define HTTP_MAX_CHUNK_LINE 4096
#define HTTP_MAX_METHOD 32 /* longer than any method: 501 (RFC 9112 3) */ /* a chunk-size line with its extensions */

enum {
    ST_START, ST_START_LF, ST_METHOD, ST_TARGET, ST_VERSION, ST_RL_LF, ST_FIELD_START, ST_NAME, ST_VALUE,
    ST_FIELD_LF, ST_HEAD_LF, ST_BODY, ST_CHUNK_SIZE, ST_CHUNK_BWS, ST_CHUNK_EXT, ST_CHUNK_SIZE_LF, ST_CHUNK_DATA,
    ST_CHUNK_DATA_CR, ST_CHUNK_DATA_LF, ST_TRAILER_START, ST_TRAILER_NAME, ST_TRAILER_VALUE, ST_TRAILER_LF,
    ST_TRAILER_END_LF, ST_DONE, ST_ERROR
};

/* RFC 9110 tchar: the bytes of a token (method, header name, coding) */
static int is_tchar(unsigned c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", (int)c) != NULL;
}

/* field-vchar / obs-text / SP / HTAB: what a header value may hold */
static int is_value_byte(unsigned c) { return c == '\t' || (c >= 0x20 && c != 0x7F); }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ieq(const char *a, size_t n, const char *b) {
    if (strlen(b) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

static int fail(http_parser *p, int status, const char *fmt, ...) {
    p->state = ST_ERROR;
    p->status = status;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < sizeof p->err)
        snprintf(p->err + k, sizeof p->err - (size_t)k, " at byte %zu", p->pos);
    return HTTP_ERROR;
}

/* A byte that has no place here: named for the reader of the error. */
static int bad_byte(http_parser *p, unsigned c, const char *where) {
    if (c == 0) return fail(p, 400, "http: NUL byte in %s", where);
    if (c == '\r') return fail(p, 400, "http: unexpected CR in %s", where);
    if (c == '\n') return fail(p, 400, "http: bare LF in %s (lines end in CRLF)", where);
    if (c > 0x20 && c < 0x7F) return fail(p, 400, "http: unexpected '%c' in %s", (int)c, where);
    return fail(p, 400, "http: unexpected byte 0x%02x in %s", c, where);
}

int http_parser_init(http_parser *p, const http_limits *lim) {
    memset(p, 0, sizeof *p);
    p->lim = lim ? *lim : (http_limits){0, 0, 0, 0};
    if (!p->lim.max_head) p->lim.max_head = HTTP_DEF_HEAD;
    if (!p->lim.max_target) p->lim.max_target = HTTP_DEF_TARGET;
    if (p->lim.max_headers <= 0) p->lim.max_headers = HTTP_DEF_HEADERS;
    if (!p->lim.max_body) p->lim.max_body = HTTP_DEF_BODY;
    if (p->lim.max_head > SIZE_MAX / 2 || p->lim.max_body > SIZE_MAX / 2) return -1;
    p->head = malloc(p->lim.max_head + 1);
    p->hdr = malloc((size_t)p->lim.max_headers * sizeof *p->hdr);
    if (!p->head || !p->hdr) {
        http_parser_free(p);
        return -1;
    }
    http_next(p);
    return 0;
}

void http_parser_free(http_parser *p) {
    if (!p) return;
    free(p->head);
    free(p->hdr);
    free(p->body);
    memset(p, 0, sizeof *p);
}

void http_next(http_parser *p) {
    memset(&p->req, 0, sizeof p->req);
    p->req.body = "";
    p->req.headers = p->hdr;
    p->status = 0;
    p->err[0] = 0;
    p->head_done = 0;
    p->state = ST_START;
    p->pos = p->hlen = p->tstart = p->nstart = p->vstart = p->extra = 0;
    p->remain = p->line = 0;
    p->chunk_digits = p->trailer_count = 0;
}

/* Room for `more` body bytes past body_len (the caller checked max_body). */
static int body_room(http_parser *p, size_t more) {
    size_t need = p->req.body_len + more;
    if (need <= p->body_cap && p->body) return 0;
    size_t nc = p->body_cap ? p->body_cap : 1024;
    while (nc < need) nc = nc > p->lim.max_body / 2 ? p->lim.max_body : nc * 2;
    if (nc < need) nc = need;
    char *q = realloc(p->body, nc + 1);
    if (!q) return fail(p, 500, "http: out of memory for a body of %zu bytes", need);
    p->body = q;
    p->body_cap = nc;
    return 0;
}

/* Append one head byte (431 when the head is full). */
static int head_put(http_parser *p, char c) {
    if (p->hlen >= p->lim.max_head) {
        if (p->state == ST_TARGET) return fail(p, 414, "http: request line over %zu bytes", p->lim.max_head);
        return fail(p, 431, "http: request head over %zu bytes", p->lim.max_head);
    }
    p->head[p->hlen++] = c;
    return 0;
}

/* The end of a header line: record name/value, the value trimmed of OWS. */
static int header_end(http_parser *p) {
    if (p->req.n_headers >= p->lim.max_headers)
        return fail(p, 431, "http: more than %d header fields", p->lim.max_headers);
    size_t vs = p->vstart, ve = p->hlen;
    while (vs < ve && (p->head[vs] == ' ' || p->head[vs] == '\t')) vs++;
    while (ve > vs && (p->head[ve - 1] == ' ' || p->head[ve - 1] == '\t')) ve--;
    if (head_put(p, 0)) return HTTP_ERROR;
    p->head[ve] = 0;
    http_header *h = &p->hdr[p->req.n_headers++];
    h->name = p->head + p->nstart;
    h->name_len = p->vstart - 1 - p->nstart;
    h->value = p->head + vs;
    h->value_len = ve - vs;
    return 0;
}

/* Comma-separated list elements of a header value, trimmed: calls
 * fn(ctx, elem, len) for each; empty elements are skipped (RFC 9110 5.6.1). */
typedef int (*list_fn)(void *ctx, const char *s, size_t n);
static int each_elem(const char *v, size_t n, list_fn fn, void *ctx) {
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        if (b > a) {
            int rc = fn(ctx, v + a, b - a);
            if (rc) return rc;
        }
        i = j + 1;
    }
    return 0;
}

typedef struct {
    int close, keep_alive, chunked, other;
    const char *coding; /* the first coding other than chunked */
    size_t coding_len;
} conn_info;

static int conn_elem(void *ctx, const char *s, size_t n) {
    conn_info *c = ctx;
    if (ieq(s, n, "close")) c->close = 1;
    else if (ieq(s, n, "keep-alive")) c->keep_alive = 1;
    return 0;
}

static int te_elem(void *ctx, const char *s, size_t n) {
    conn_info *c = ctx;
    if (ieq(s, n, "chunked")) {
        c->chunked++;
    } else if (!c->other++) {
        c->coding = s;
        c->coding_len = n;
    }
    return 0;
}

/* The head is complete: interpret the fields that frame the message. */
static int head_complete(http_parser *p) {
    http_request *r = &p->req;
    conn_info ci = {0, 0, 0, 0, "", 0};
    int hosts = 0, te = 0, cl_seen = 0;
    const char *cl_text = "";
    size_t cl = 0;
    for (int i = 0; i < r->n_headers; i++) {
        const http_header *h = &p->hdr[i];
        if (ieq(h->name, h->name_len, "content-length")) {
            size_t v = 0;
            int over = 0;
            if (!h->value_len) return fail(p, 400, "http: empty Content-Length");
            for (size_t k = 0; k < h->value_len; k++) {
                unsigned c = (unsigned char)h->value[k];
                if (c < '0' || c > '9') return fail(p, 400, "http: Content-Length is not a number: '%.40s'", h->value);
                if (v > (SIZE_MAX - 9) / 10) over = 1;
                else v = v * 10 + (c - '0');
            }
            if (over) v = SIZE_MAX;
            if (cl_seen && v != cl) return fail(p, 400, "http: conflicting Content-Length values");
            cl = v;
            cl_seen = 1;
            cl_text = h->value;
        } else if (ieq(h->name, h->name_len, "transfer-encoding")) {
            te = 1;
            each_elem(h->value, h->value_len, te_elem, &ci);
        } else if (ieq(h->name, h->name_len, "host")) {
            hosts++;
        } else if (ieq(h->name, h->name_len, "connection")) {
            each_elem(h->value, h->value_len, conn_elem, &ci);
        } else if (ieq(h->name, h->name_len, "expect") && r->minor == 1) { /* 1.0: ignored (RFC 9110 10.1.1) */
            if (!ieq(h->value, h->value_len, "100-continue"))
                return fail(p, 417, "http: unsupported expectation '%.40s'", h->value);
            r->expect_continue = 1;
        }
    }
    if (r->minor == 1 && hosts == 0) return fail(p, 400, "http: HTTP/1.1 request without Host");
    if (hosts > 1) return fail(p, 400, "http: more than one Host header");
    if (te) {
        if (r->minor == 0) return fail(p, 400, "http: Transfer-Encoding in an HTTP/1.0 request");
        if (cl_seen) return fail(p, 400, "http: both Transfer-Encoding and Content-Length");
        /* chunked is the only coding read: any other (gzip, or an empty
         * value) is 501, so chunked is always the last one when accepted */
        if (ci.other || !ci.chunked)
            return fail(p, 501, "http: unsupported Transfer-Encoding '%.*s'", (int)(ci.coding_len < 40 ? ci.coding_len : 40),
                        ci.coding);
        if (ci.chunked > 1) return fail(p, 400, "http: chunked applied twice");
    }
    r->keep_alive = r->minor == 1 ? !ci.close : ci.keep_alive && !ci.close;
    p->head_done = 1;
    if (te) {
        r->chunked = 1;
        p->state = ST_CHUNK_SIZE;
        return 0;
    }
    if (cl > p->lim.max_body)
        return fail(p, 413, "http: Content-Length %.24s%s over the limit of %zu bytes", cl_text,
                    strlen(cl_text) > 24 ? "..." : "", p->lim.max_body);
    if (cl == 0) {
        p->state = ST_DONE;
        return 0;
    }
    if (body_room(p, cl)) return HTTP_ERROR;
    p->remain = cl;
    p->state = ST_BODY;
    return 0;
}

/* The request line is complete: split and check it. */
static int request_line(http_parser *p) {
    http_request *r = &p->req;
    const char *v = p->head + p->vstart;
    size_t vl = p->hlen - p->vstart;
    if (vl != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' || v[7] > '9')
        return fail(p, 400, "http: malformed HTTP version");
    if (v[5] != '1') return fail(p, 505, "http: HTTP version %.8s not supported", v);
    r->minor = v[7] == '0' ? 0 : 1;
    if (head_put(p, 0)) return HTTP_ERROR;
    r->method = p->head;
    const char *t = p->head + p->tstart, *ps = t;
    r->target = t;
    if (t[0] == '*' && !t[1]) {
        if (strcmp(r->method, "OPTIONS")) return fail(p, 400, "http: '*' target outside OPTIONS");
    } else if (t[0] != '/') {
        /* absolute-form (RFC 9112 3.2.2): scheme "://" authority, then the path */
        const char *sep = strstr(t, "://");
        if (!sep || sep == t) return fail(p, 400, "http: malformed request target");
        for (const char *q = t; q < sep; q++)
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (q > t && strchr("0123456789+-.", *q))))
                return fail(p, 400, "http: malformed request target");
        ps = sep + 3 + strcspn(sep + 3, "/?");
        if (ps == sep + 3) return fail(p, 400, "http: request target without a host");
    }
    /* path and query, copied after the target: "path\0query\0" */
    size_t plen = strcspn(ps, "?"), qlen = ps[plen] ? strlen(ps + plen + 1) : 0;
    if (p->hlen + plen + qlen + 3 > p->lim.max_head)
        return fail(p, 431, "http: request head over %zu bytes", p->lim.max_head);
    char *c = p->head + p->hlen;
    r->path = c;
    if (plen) memcpy(c, ps, plen);
    else c[plen++] = '/';
    c[plen] = 0;
    p->hlen += plen + 1;
    if (ps[strcspn(ps, "?")]) {
        r->query = c + plen + 1;
        memcpy(c + plen + 1, ps + strcspn(ps, "?") + 1, qlen + 1);
        p->hlen += qlen + 1;
    }
    return 0;
}

int http_feed(http_parser *p, const void *buf, size_t n, size_t *used) {
    const unsigned char *s = buf;
    size_t i = 0;
    int rc = HTTP_NEED_MORE;
    if (p->state == ST_DONE || p->state == ST_ERROR) {
        *used = 0;
        return p->state == ST_DONE ? HTTP_DONE : HTTP_ERROR;
    }
    while (i < n) {
        unsigned c = s[i];
        switch (p->state) {
        case ST_BODY:
        case ST_CHUNK_DATA: {
            size_t k = n - i < p->remain ? n - i : p->remain;
            memcpy(p->body + p->req.body_len, s + i, k);
            p->req.body_len += k;
            p->remain -= k;
            i += k;
            p->pos += k;
            if (!p->remain) p->state = p->state == ST_BODY ? ST_DONE : ST_CHUNK_DATA_CR;
            break;
        }
        default:
            i++;
            p->pos++;
            switch (p->state) {
            case ST_START: /* empty lines before a request are skipped (RFC 9112 2.2) */
                if (c == '\r') {
                    p->state = ST_START_LF;
                    if ((p->extra += 2) > p->lim.max_head)
                        fail(p, 431, "http: request head over %zu bytes", p->lim.max_head);
                } else if (is_tchar(c)) {
                    if (head_put(p, (char)c) == 0) p->state = ST_METHOD;
                } else {
                    bad_byte(p, c, "the request line");
                }
                break;
            case ST_START_LF:
                if (c == '\n') p->state = ST_START;
                else fail(p, 400, "http: bare CR (not followed by LF)");
                break;
            case ST_METHOD:
                if (is_tchar(c)) {
                    if (p->hlen >= HTTP_MAX_METHOD) fail(p, 501, "http: method over %d bytes", HTTP_MAX_METHOD);
                    else head_put(p, (char)c);
                } else if (c == ' ') {
                    if (head_put(p, 0)) break;
                    p->tstart = p->hlen;
                    p->state = ST_TARGET;
                } else {
                    bad_byte(p, c, "the method");
                }
                break;
            case ST_TARGET:
                if (c > 0x20 && c < 0x7F) {
                    if (p->hlen - p->tstart >= p->lim.max_target) {
                        fail(p, 414, "http: request target over %zu bytes", p->lim.max_target);
                        break;
                    }
                    head_put(p, (char)c);
                } else if (c == ' ' && p->hlen > p->tstart) {
                    if (head_put(p, 0)) break;
                    p->vstart = p->hlen;
                    p->state = ST_VERSION;
                } else if (c == '\r') {
                    fail(p, 400, "http: request line without an HTTP version");
                } else {
                    bad_byte(p, c, "the request target");
                }
                break;
            case ST_VERSION:
                if (c == '\r') {
                    if (request_line(p) == 0) p->state = ST_RL_LF;
                } else if (c > 0x20 && c < 0x7F && p->hlen - p->vstart < 8) {
                    head_put(p, (char)c);
                } else {
                    if (c > 0x20 && c < 0x7F) fail(p, 400, "http: malformed HTTP version");
                    else bad_byte(p, c, "the HTTP version");
                }
                break;
            case ST_RL_LF:
            case ST_FIELD_LF:
            case ST_TRAILER_LF:
                if (c == '\n') p->state = p->state == ST_TRAILER_LF ? ST_TRAILER_START : ST_FIELD_START;
                else fail(p, 400, "http: bare CR (not followed by LF)");
                break;
            case ST_FIELD_START:
                if (c == '\r') {
                    p->state = ST_HEAD_LF;
                } else if (c == ' ' || c == '\t') {
                    fail(p, 400, "http: obsolete line folding (obs-fold) in the head");
                } else if (is_tchar(c)) {
                    p->nstart = p->hlen;
                    if (head_put(p, (char)c) == 0) p->state = ST_NAME;
                } else {
                    bad_byte(p, c, "a header name");
                }
                break;
            case ST_NAME:
                if (is_tchar(c)) {
                    head_put(p, (char)c);
                } else if (c == ':') {
                    if (head_put(p, 0)) break;
                    p->vstart = p->hlen;
                    p->state = ST_VALUE;
                } else if (c == ' ' || c == '\t') {
                    fail(p, 400, "http: whitespace between a header name and its colon");
                } else {
                    bad_byte(p, c, "a header name");
                }
                break;
            case ST_VALUE:
                if (c == '\r') {
                    if (header_end(p) == 0) p->state = ST_FIELD_LF;
                } else if (is_value_byte(c)) {
                    head_put(p, (char)c);
                } else {
                    bad_byte(p, c, "a header value");
                }
                break;
            case ST_HEAD_LF:
                if (c == '\n') head_complete(p);
                else fail(p, 400, "http: bare CR (not followed by LF)");
                break;
            case ST_CHUNK_SIZE: {
                int h = c >= '0' && c <= '9' ? (int)c - '0' : lower((int)c) >= 'a' && lower((int)c) <= 'f' ? lower((int)c) - 'a' + 10 : -1;
                p->line++;
                if (h >= 0) {
                    if (p->remain > (p->lim.max_body - p->req.body_len) / 16) {
                        fail(p, 413, "http: chunked body over the limit of %zu bytes", p->lim.max_body);
                        break;
                    }
                    p->remain = p->remain * 16 + (size_t)h;
                    if (p->remain > p->lim.max_body - p->req.body_len) {
                        fail(p, 413, "http: chunked body over the limit of %zu bytes", p->lim.max_body);
                        break;
                    }
                    p->chunk_digits++;
                } else if (!p->chunk_digits) {
                    bad_byte(p, c, "a chunk size");
                } else if (c == '\r') {
                    p->state = ST_CHUNK_SIZE_LF;
                } else if (c == ';') {
                    p->state = ST_CHUNK_EXT;
                } else if (c == ' ' || c == '\t') {
                    p->state = ST_CHUNK_BWS;
                } else {
                    bad_byte(p, c, "a chunk size");
                }
                break;
            }
            case ST_CHUNK_BWS: /* whitespace after the size: extensions must follow */
                if (++p->line > HTTP_MAX_CHUNK_LINE)
                    fail(p, 400, "http: chunk extensions over %d bytes", HTTP_MAX_CHUNK_LINE);
                else if (c == ';') p->state = ST_CHUNK_EXT;
                else if (c != ' ' && c != '\t') bad_byte(p, c, "a chunk size");
                break;
            case ST_CHUNK_EXT: /* chunk extensions: read and ignored */
                if (++p->line > HTTP_MAX_CHUNK_LINE)
                    fail(p, 400, "http: chunk extensions over %d bytes", HTTP_MAX_CHUNK_LINE);
                else if (c == '\r') p->state = ST_CHUNK_SIZE_LF;
                else if (!is_value_byte(c)) bad_byte(p, c, "a chunk extension");
                break;
            case ST_CHUNK_SIZE_LF:
                if (c != '\n') {
                    fail(p, 400, "http: bare CR (not followed by LF)");
                } else if (p->remain == 0) {
                    p->state = ST_TRAILER_START;
                } else if (body_room(p, p->remain) == 0) {
                    p->state = ST_CHUNK_DATA;
                }
                break;
            case ST_CHUNK_DATA_CR:
                if (c == '\r') p->state = ST_CHUNK_DATA_LF;
                else fail(p, 400, "http: chunk data longer than its size (no CRLF after it)");
                break;
            case ST_CHUNK_DATA_LF:
                if (c == '\n') {
                    p->state = ST_CHUNK_SIZE;
                    p->remain = p->line = 0;
                    p->chunk_digits = 0;
                } else {
                    fail(p, 400, "http: bare CR (not followed by LF) at the end of a chunk");
                }
                break;
            case ST_TRAILER_START:
                if (c == '\r') {
                    p->state = ST_TRAILER_END_LF;
                } else if (c == ' ' || c == '\t') {
                    fail(p, 400, "http: obsolete line folding (obs-fold) in the trailers");
                } else if (is_tchar(c)) {
                    if (++p->trailer_count > p->lim.max_headers)
                        fail(p, 431, "http: more than %d trailer fields", p->lim.max_headers);
                    else p->state = ST_TRAILER_NAME;
                } else {
                    bad_byte(p, c, "a trailer name");
                }
                break;
            case ST_TRAILER_NAME:
                if (c == ':') p->state = ST_TRAILER_VALUE;
                else if (c == ' ' || c == '\t') fail(p, 400, "http: whitespace between a trailer name and its colon");
                else if (!is_tchar(c)) bad_byte(p, c, "a trailer name");
                break;
            case ST_TRAILER_VALUE:
                if (c == '\r') p->state = ST_TRAILER_LF;
                else if (!is_value_byte(c)) bad_byte(p, c, "a trailer value");
                break;
            case ST_TRAILER_END_LF:
                if (c == '\n') p->state = ST_DONE;
                else fail(p, 400, "http: bare CR (not followed by LF)");
                break;
            }
            /* trailers are read, not kept: they count against the head limit */
            if (p->state >= ST_TRAILER_START && p->state <= ST_TRAILER_END_LF && ++p->extra > p->lim.max_head)
                fail(p, 431, "http: trailers over %zu bytes", p->lim.max_head);
        }
        if (p->state == ST_ERROR) {
            rc = HTTP_ERROR;
            break;
        }
        if (p->state == ST_DONE) {
            rc = HTTP_DONE;
            break;
        }
    }
    if (p->state == ST_DONE) {
        if (p->body) p->body[p->req.body_len] = 0;
        p->req.body = p->body ? p->body : "";
        rc = HTTP_DONE;
    }
    *used = i;
    return rc;
}

const char *http_header_get(const http_parser *p, const char *name) {
    for (int i = 0; i < p->req.n_headers; i++)
        if (ieq(p->hdr[i].name, p->hdr[i].name_len, name)) return p->hdr[i].value;
    return NULL;
}

int http_auth_bearer(const http_parser *p, const char *key) {
    const char *v = NULL;
    int count = 0;
    size_t vl = 0;
    for (int i = 0; i < p->req.n_headers; i++)
        if (ieq(p->hdr[i].name, p->hdr[i].name_len, "authorization")) {
            v = p->hdr[i].value;
            vl = p->hdr[i].value_len;
            count++;
        }
    size_t kl = key ? strlen(key) : 0;
    if (count != 1 || !kl || vl < 7 || !ieq(v, 6, "bearer") || (v[6] != ' ' && v[6] != '\t')) return 0;
    v += 7;
    vl -= 7;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    /* constant time in the token's content: every byte of the key is
     * compared, whatever the token holds and wherever it differs */
    volatile unsigned diff = (unsigned)(vl != kl);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < vl ? v[i] : 0);
    return diff == 0;
}

const char *http_reason(int status) {
    static const struct {
        int code;
        const char *text;
    } t[] = {
        {100, "Continue"}, {200, "OK"}, {201, "Created"}, {204, "No Content"},
        {304, "Not Modified"}, {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"},
        {404, "Not Found"}, {405, "Method Not Allowed"}, {408, "Request Timeout"},
        {409, "Conflict"}, {411, "Length Required"}, {413, "Content Too Large"}, {414, "URI Too Long"},
        {415, "Unsupported Media Type"}, {417, "Expectation Failed"}, {422, "Unprocessable Content"},
        {429, "Too Many Requests"}, {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"}, {501, "Not Implemented"}, {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (t[i].code == status) return t[i].text;
    return "Unknown";
}

/* ---- responses ---- */

void http_buf_reset(http_buf *b) {
    b->len = 0;
    b->oom = 0;
}

void http_buf_free(http_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

static int put(http_buf *b, const void *s, size_t n) {
    if (b->oom) return -1;
    if (n > SIZE_MAX / 4 - b->len) {
        b->oom = 1;
        return -1;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 512;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return -1;
        }
        b->p = q;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

int http_buf_put(http_buf *b, const void *s, size_t n) { return put(b, s, n); }

static int puts_(http_buf *b, const char *s) { return put(b, s, strlen(s)); }

int http_head(http_buf *b, int status, const char *content_type, long long body_len, int keep_alive,
              const char *extra) {
    char line[160];
    if (status < 100 || status > 999) status = 500;
    snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    puts_(b, line);
    if (content_type) {
        puts_(b, "Content-Type: ");
        puts_(b, content_type);
        puts_(b, "\r\n");
    }
    int bodiless = status < 200 || status == 204 || status == 304;
    if (!bodiless) {
        if (body_len < 0) snprintf(line, sizeof line, "Transfer-Encoding: chunked\r\n");
        else snprintf(line, sizeof line, "Content-Length: %lld\r\n", body_len);
        puts_(b, line);
    }
    if (status >= 200) puts_(b, keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (extra) puts_(b, extra);
    return put(b, "\r\n", 2);
}

int http_response(http_buf *b, int status, const char *content_type, const void *body, size_t n,
                  int keep_alive, const char *extra) {
    int bodiless = status < 200 || status == 204 || status == 304;
    http_head(b, status, content_type, (long long)(bodiless ? 0 : n), keep_alive, extra);
    return bodiless ? (b->oom ? -1 : 0) : put(b, body, n);
}

int http_continue(http_buf *b) { return puts_(b, "HTTP/1.1 100 Continue\r\n\r\n"); }

int http_chunk(http_buf *b, const void *data, size_t n) {
    if (!n) return b->oom ? -1 : 0;
    char size[24];
    snprintf(size, sizeof size, "%zx\r\n", n);
    puts_(b, size);
    put(b, data, n);
    return put(b, "\r\n", 2);
}

int http_chunk_end(http_buf *b) { return puts_(b, "0\r\n\r\n"); }

int http_sse(http_buf *b, const char *data, size_t n) {
    /* the event's size first, so that it goes out as one chunk: "data: "
     * + the line + "\n" for each line (split at CRLF, CR or LF), then "\n" */
    size_t lines = 1, breaks = 0;
    for (size_t i = 0; i < n; i++) {
        if (data[i] != '\r' && data[i] != '\n') continue;
        lines++;
        breaks++;
        if (data[i] == '\r' && i + 1 < n && data[i + 1] == '\n') i++, breaks++;
    }
    char size[24];
    snprintf(size, sizeof size, "%zx\r\n", 7 * lines + (n - breaks) + 1);
    puts_(b, size);
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && data[i] != '\n' && data[i] != '\r') continue;
        puts_(b, "data: ");
        put(b, data + start, i - start);
        put(b, "\n", 1);
        if (i + 1 < n && data[i] == '\r' && data[i + 1] == '\n') i++;
        start = i + 1;
    }
    put(b, "\n", 1);
    return put(b, "\r\n", 2);
}
