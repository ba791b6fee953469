/* fuzz_http.c - libFuzzer target for src/http.c. The first 8 bytes of the
 * input are piece lengths; the rest is a byte stream fed to the parser
 * twice, whole and cut in pieces of those lengths (cyclically), following
 * pipelined requests with http_next: both ways must give the same requests
 * and the same error. Each body is also written back as chunks and SSE
 * events and read again by the parser. The seeds are tests/corpus/fuzz_http/
 * (8 bytes of piece lengths, then requests). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return (h ^ 0xff) * 1099511628211ull; /* a separator, so fields do not run together */
}

static uint64_t mixs(uint64_t h, const char *s) { return s ? mix(h, s, strlen(s)) : mix(h, "\x01", 1); }

/* A digest of a request (or the error), checking what must hold. */
static uint64_t digest(const http_parser *p, int rc, uint64_t h) {
    if (rc == HTTP_ERROR) {
        if (p->status < 400 || p->status > 599 || strncmp(p->err, "http: ", 6)) abort();
        h = mix(h, &p->status, sizeof p->status);
        return mixs(h, p->err);
    }
    const http_request *r = &p->req;
    if (!r->method || !r->target || !r->path || r->body[r->body_len] != 0) abort();
    h = mixs(mixs(mixs(mixs(h, r->method), r->target), r->path), r->query);
    int flags[4] = {r->minor, r->keep_alive, r->expect_continue, r->chunked};
    h = mix(h, flags, sizeof flags);
    for (int i = 0; i < r->n_headers; i++) {
        if (strlen(r->headers[i].name) != r->headers[i].name_len) abort();
        h = mix(mix(h, r->headers[i].name, r->headers[i].name_len), r->headers[i].value, r->headers[i].value_len);
    }
    return mix(h, r->body, r->body_len);
}

/* The writers' chunks and events, read back as a chunked request body. */
static void echo(const http_request *r) {
    http_buf b = {0};
    const char *h = "POST / HTTP/1.1\r\nHost: f\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t hl = strlen(h);
    http_buf_put(&b, h, hl);
    http_chunk(&b, r->body, r->body_len);
    http_sse(&b, r->body, r->body_len);
    http_chunk_end(&b);
    if (b.oom) goto done;
    http_parser p;
    http_limits lim = {0, 0, 0, 9 * r->body_len + 64}; /* an event: 7 bytes more a line */
    if (http_parser_init(&p, &lim)) goto done;
    size_t used;
    if (http_feed(&p, b.p, b.len, &used) != HTTP_DONE || used != b.len) abort();
    if (p.req.body_len < r->body_len || memcmp(p.req.body, r->body, r->body_len)) abort();
    const char *ev = p.req.body + r->body_len;
    if (strncmp(ev, "data: ", 6) || p.req.body[p.req.body_len - 1] != '\n') abort();
    http_parser_free(&p);
done:
    http_buf_free(&b);
}

/* Feeds s[0..n) in pieces (cut == NULL: whole); the digest of everything. */
static uint64_t run(const uint8_t *s, size_t n, const uint8_t *cut, int check) {
    http_limits lim = {512, 128, 16, 4096};
    http_parser p;
    if (http_parser_init(&p, &lim)) return 0;
    uint64_t h = 1469598103934665603ull;
    size_t at = 0;
    int k = 0, rc = HTTP_NEED_MORE, requests = 0;
    while (at < n) {
        size_t piece = cut ? (size_t)cut[k++ & 7] % 64 + 1 : n - at;
        if (piece > n - at) piece = n - at;
        size_t end = at + piece;
        while (at < end) {
            size_t used = 0;
            rc = http_feed(&p, s + at, end - at, &used);
            if (used > end - at) abort();
            at += used;
            if (rc == HTTP_NEED_MORE) {
                if (at != end) abort();
                break;
            }
            h = digest(&p, rc, h);
            if (rc == HTTP_ERROR) goto out;
            if (check && requests++ < 4) {
                echo(&p.req);
                http_auth_bearer(&p, "sk-fuzz");
                http_header_get(&p, "content-type");
            }
            http_next(&p);
        }
    }
out:
    h = mix(h, &rc, sizeof rc);
    http_parser_free(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8) return 0;
    uint8_t cut[8];
    memcpy(cut, data, 8);
    uint8_t *buf = malloc(size - 8 ? size - 8 : 1); /* exactly the stream: ASan sees overreads */
    if (!buf) return 0;
    memcpy(buf, data + 8, size - 8);
    if (run(buf, size - 8, NULL, 1) != run(buf, size - 8, cut, 0)) abort();
    free(buf);
    return 0;
}
