/* test_http.c - the HTTP/1.1 parser and response writers (src/http.c):
 * every request is fed in one piece, split at every byte boundary and byte
 * by byte, with the same result each way; every error status; pipelining;
 * chunked bodies with extensions and trailers; obs-fold, NUL and bare CR
 * refused; the writers' bytes, read back by the parser; Bearer checks.
 * Needs no test data. */
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "http.h"

/* One line describing a parsed request (or the error). */
static void describe(const http_parser *p, int rc, char *out, size_t cap) {
    size_t k = 0;
#define ADD(...) k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, __VA_ARGS__)
    if (rc == HTTP_ERROR) {
        ADD("ERR %d %s|", p->status, p->err);
        return;
    }
    const http_request *r = &p->req;
    ADD("%s %s path=%s q=%s 1.%d ka=%d ex=%d ch=%d [", r->method, r->target, r->path, r->query ? r->query : "(none)",
        r->minor, r->keep_alive, r->expect_continue, r->chunked);
    for (int i = 0; i < r->n_headers; i++) ADD("%s=%s;", r->headers[i].name, r->headers[i].value);
    ADD("] body=%zu:", r->body_len);
    for (size_t i = 0; i < r->body_len && k + 1 < cap; i++) out[k++] = r->body[i] ? r->body[i] : '0';
    ADD("|");
#undef ADD
}

/* Feeds s[0..n) in pieces: cuts[] are the piece ends (the last is n);
 * every completed request and the final error are described in out. */
static void run(const char *s, const size_t *cuts, int ncuts, const http_limits *lim, char *out,
                size_t cap) {
    http_parser p;
    out[0] = 0;
    if (http_parser_init(&p, lim)) {
        snprintf(out, cap, "init failed");
        return;
    }
    size_t k = 0, at = 0;
    int rc = HTTP_NEED_MORE;
    for (int c = 0; c < ncuts && rc != HTTP_ERROR; c++) {
        while (at < cuts[c]) {
            size_t used = 0;
            rc = http_feed(&p, s + at, cuts[c] - at, &used);
            at += used;
            if (rc == HTTP_NEED_MORE) break;
            describe(&p, rc, out + k, cap - k);
            k += strlen(out + k);
            if (rc == HTTP_ERROR) break;
            http_next(&p);
        }
    }
    if (rc == HTTP_NEED_MORE && p.state != 0) snprintf(out + k, cap - k, "INCOMPLETE|");
    http_parser_free(&p);
}

static char ref[8192], got[8192];

/* The description in one piece; and the same for every split into two
 * pieces and for byte-by-byte feeding (a FAIL line for each difference). */
static const char *parse_all_ways(const char *s, size_t n, const http_limits *lim) {
    size_t cuts[3] = {n};
    run(s, cuts, 1, lim, ref, sizeof ref);
    int same = 1;
    for (size_t i = 1; i < n && same; i++) {
        cuts[0] = i;
        cuts[1] = n;
        run(s, cuts, 2, lim, got, sizeof got);
        same = !strcmp(ref, got);
        CHECK(same, "split at %zu differs:\n  %s\n  %s", i, ref, got);
    }
    static size_t bytes[1 << 14];
    if (n < sizeof bytes / sizeof *bytes) {
        for (size_t i = 0; i < n; i++) bytes[i] = i + 1;
        run(s, bytes, (int)n, lim, got, sizeof got);
        CHECK(!strcmp(ref, got), "byte by byte differs:\n  %s\n  %s", ref, got);
    }
    return ref;
}

#define S(lit) lit, sizeof(lit) - 1

static void ok_case(const char *s, size_t n, const char *want, const http_limits *lim) {
    const char *d = parse_all_ways(s, n, lim);
    CHECK(!strcmp(d, want), "request:\n  got  %s\n  want %s", d, want);
}

/* an error: the status, and the reason containing `why` */
static void err_case(const char *s, size_t n, int status, const char *why, const http_limits *lim) {
    const char *d = parse_all_ways(s, n, lim);
    char st[16];
    snprintf(st, sizeof st, "ERR %d ", status);
    CHECK(strstr(d, st) && strstr(d, why), "want %d '%s', got %s", status, why, d);
}

static void test_requests(void) {
    ok_case(S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), "GET / path=/ q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;] body=0:|",
            NULL);
    ok_case(S("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
            "POST /v1/chat/completions path=/v1/chat/completions q=(none) 1.1 ka=1 ex=0 ch=0 "
            "[Host=x;Content-Length=5;] body=5:hello|",
            NULL);
    ok_case(S("POST /x?y=1&z HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5;ext=1;q=\"a b\"\r\nhello\r\n6 ; e\r\n world\r\n000\r\nTrailer-X: 1\r\nT2:\r\n\r\n"),
            "POST /x?y=1&z path=/x q=y=1&z 1.1 ka=1 ex=0 ch=1 [Host=h;Transfer-Encoding=chunked;] "
            "body=11:hello world|",
            NULL);
    ok_case(S("GET /a HTTP/1.0\r\n\r\n"), "GET /a path=/a q=(none) 1.0 ka=0 ex=0 ch=0 [] body=0:|", NULL);
    ok_case(S("GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"),
            "GET /a path=/a q=(none) 1.0 ka=1 ex=0 ch=0 [Connection=Keep-Alive;] body=0:|", NULL);
    ok_case(S("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n"),
            "GET / path=/ q=(none) 1.1 ka=0 ex=0 ch=0 [Host=a;Connection=keep-alive, CLOSE;] body=0:|", NULL);
    ok_case(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi"),
            "POST / path=/ q=(none) 1.1 ka=1 ex=1 ch=0 [Host=a;Expect=100-Continue;Content-Length=2;] body=2:hi|",
            NULL);
    ok_case(S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
            "GET / path=/ q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;] body=0:|", NULL);
    ok_case(S("GET http://example.com:80/v1/models?x HTTP/1.1\r\nHost: example.com\r\n\r\n"),
            "GET http://example.com:80/v1/models?x path=/v1/models q=x 1.1 ka=1 ex=0 ch=0 [Host=example.com;] body=0:|",
            NULL);
    ok_case(S("GET https://h?q HTTP/1.1\r\nHost: h\r\n\r\n"),
            "GET https://h?q path=/ q=q 1.1 ka=1 ex=0 ch=0 [Host=h;] body=0:|", NULL);
    ok_case(S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"),
            "OPTIONS * path=* q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;] body=0:|", NULL);
    ok_case(S("GET /? HTTP/1.1\r\nHost: a\r\nX:   a b \t\r\nY:\r\nZ: \x80\xff\r\n\r\n"),
            "GET /? path=/ q= 1.1 ka=1 ex=0 ch=0 [Host=a;X=a b;Y=;Z=\x80\xff;] body=0:|", NULL);
    ok_case(S("PUT / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 3\r\nContent-Length: 3\r\n\r\na\0b"),
            "PUT / path=/ q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;content-LENGTH=3;Content-Length=3;] body=3:a0b|", NULL);
    ok_case(S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), "GET / path=/ q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;] body=0:|",
            NULL);
    ok_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"),
            "POST / path=/ q=(none) 1.1 ka=1 ex=0 ch=1 [Host=a;Transfer-Encoding=Chunked;] body=0:|", NULL);
    ok_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"),
            "POST / path=/ q=(none) 1.1 ka=1 ex=0 ch=1 [Host=a;Transfer-Encoding=chunked;] body=10:0123456789|", NULL);
    ok_case(S("GET / HTTP/1.0\r\nExpect: whatever\r\n\r\n"),
            "GET / path=/ q=(none) 1.0 ka=0 ex=0 ch=0 [Expect=whatever;] body=0:|", NULL);
}

static void test_errors(void) {
    http_limits L = {256, 32, 4, 100};
    err_case(S("GET / HTTP/1.1\r\n\r\n"), 400, "without Host", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "more than one Host", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), 400, "obs-fold", NULL);
    err_case(S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400, "obs-fold", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\0\r\n\r\n"), 400, "NUL byte in a header value at byte 24", NULL);
    err_case(S("GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n"), 400, "NUL byte", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400, "bare CR", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\r\r\n\r\n"), 400, "bare CR", NULL);
    err_case(S("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400, "bare CR", NULL);
    err_case(S("GET / HTTP/1.1\nHost: a\n\n"), 400, "bare LF", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"), 400, "bare LF", NULL);
    err_case(S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400, "whitespace between a header name", NULL);
    err_case(S("GET / HTTP/1.1\r\n: a\r\n\r\n"), 400, "unexpected ':'", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello"), 400, "not a number", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello"), 400, "not a number", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\nhello"), 400, "not a number", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 400, "empty Content-Length", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"), 400,
             "conflicting Content-Length", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
             400, "both Transfer-Encoding and Content-Length", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
             400, "both Transfer-Encoding and Content-Length", NULL);
    err_case(S("GET / HTTP/1.1x\r\nHost: a\r\n\r\n"), 400, "malformed HTTP version", NULL);
    err_case(S("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400, "malformed HTTP version", NULL);
    err_case(S("GET / http/1.1\r\nHost: a\r\n\r\n"), 400, "malformed HTTP version", NULL);
    err_case(S("GET /\r\n\r\n"), 400, "request line without an HTTP version", NULL);
    err_case(S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "request target", NULL);
    err_case(S("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "unexpected '(' in the method", NULL);
    err_case(S("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "malformed request target", NULL);
    err_case(S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "'*' target outside OPTIONS", NULL);
    err_case(S("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "without a host", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"), 400,
             "unexpected 'z' in a chunk size", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n"), 400, "chunk size", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n"), 400,
             "unexpected 'x' in a chunk size", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n"), 400,
             "unexpected CR in a chunk size", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"), 400,
             "chunk data longer than its size", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"), 400,
             "bare LF", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;a\0\r\nabc\r\n0\r\n\r\n"), 400,
             "NUL byte in a chunk extension", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n"), 400,
             "obs-fold", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\rb\r\n\r\n"), 400,
             "bare CR", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400,
             "chunked applied twice", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 501,
             "unsupported Transfer-Encoding 'gzip'", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n"), 501, "unsupported", NULL);
    err_case(S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400, "HTTP/1.0", NULL);
    /* 413 */
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"), 413, "over the limit of 100", &L);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999999\r\n\r\n"), 413,
             "over the limit", &L);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n50\r\n"
               "01234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n15\r\n"),
             413, "chunked body over the limit of 100", &L);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\n"), 413,
             "chunked body over", NULL);
    ok_case(S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
              "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"),
            "POST / path=/ q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;Content-Length=100;] body=100:"
            "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789|",
            &L);
    /* 414 */
    err_case(S("GET /0123456789012345678901234567890123 HTTP/1.1\r\nHost: a\r\n\r\n"), 414,
             "request target over 32 bytes", &L);
    ok_case(S("GET /234567890123456789012345678901 HTTP/1.1\r\nHost: a\r\n\r\n"),
            "GET /234567890123456789012345678901 path=/234567890123456789012345678901 q=(none) 1.1 ka=1 ex=0 ch=0 "
            "[Host=a;] body=0:|",
            &L);
    /* 431 */
    char big[600];
    int k = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + k, 'x', 300);
    k += 300;
    k += snprintf(big + k, sizeof big - (size_t)k, "\r\n\r\n");
    err_case(big, (size_t)k, 431, "request head over 256 bytes", &L);
    err_case(S("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), 431, "more than 4 header fields",
             &L);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n"
               "D: 4\r\nE: 5\r\n\r\n"),
             431, "more than 4 trailer fields", &L);
    k = snprintf(big, sizeof big, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: ");
    memset(big + k, 'y', 300);
    k += 300;
    k += snprintf(big + k, sizeof big - (size_t)k, "\r\n\r\n");
    err_case(big, (size_t)k, 431, "trailers over 256 bytes", &L);
    k = 0;
    for (int i = 0; i < 140; i++) big[k++] = '\r', big[k++] = '\n';
    err_case(big, (size_t)k, 431, "request head over 256", &L);
    /* 501, 505, 417 */
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 501,
             "unsupported Transfer-Encoding 'gzip'", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501, "'gzip'", NULL);
    err_case(S("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ / HTTP/1.1\r\n\r\n"), 501, "method over 32 bytes", NULL);
    err_case(S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505, "HTTP/2.0 not supported", NULL);
    err_case(S("GET / HTTP/0.9\r\n\r\n"), 505, "not supported", NULL);
    err_case(S("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"), 417, "unsupported expectation", NULL);
}

static void test_pipelining(void) {
    const char s[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                     "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"
                     "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                     "GET /d HTTP/1.0\r\n\r\n"
                     "GET /e HTTP/1.1\r\n";
    const char *d = parse_all_ways(s, sizeof s - 1, NULL);
    CHECK(!strcmp(d, "GET /a path=/a q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;] body=0:|"
                     "POST /b path=/b q=(none) 1.1 ka=1 ex=0 ch=0 [Host=a;Content-Length=3;] body=3:xyz|"
                     "POST /c path=/c q=(none) 1.1 ka=1 ex=0 ch=1 [Host=a;Transfer-Encoding=chunked;] body=2:hi|"
                     "GET /d path=/d q=(none) 1.0 ka=0 ex=0 ch=0 [] body=0:|INCOMPLETE|"),
          "pipelined: %s", d);

    /* *used marks where the next request starts; DONE uses nothing more until http_next */
    http_parser p;
    CHECK(http_parser_init(&p, NULL) == 0, "init");
    size_t used = 0, first = strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(http_feed(&p, s, sizeof s - 1, &used) == HTTP_DONE && used == first, "used %zu", used);
    CHECK(http_feed(&p, s + used, 10, &used) == HTTP_DONE && used == 0, "done until next");
    CHECK(http_header_get(&p, "HOST") && !strcmp(http_header_get(&p, "host"), "a") && !http_header_get(&p, "x"),
          "case-insensitive header lookup");
    http_next(&p);
    CHECK(http_feed(&p, s + first, sizeof s - 1 - first, &used) == HTTP_DONE && !strcmp(p.req.path, "/b"), "next");
    http_parser_free(&p);

    /* 100-continue: the head is complete before the body arrives */
    CHECK(http_parser_init(&p, NULL) == 0, "init");
    const char e[] = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    CHECK(http_feed(&p, e, sizeof e - 1, &used) == HTTP_NEED_MORE && p.head_done && p.req.expect_continue,
          "head done, body pending");
    CHECK(http_feed(&p, "body", 4, &used) == HTTP_DONE && !strcmp(p.req.body, "body"), "body after continue");
    http_next(&p);
    CHECK(http_feed(&p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &used) == HTTP_DONE && p.req.body_len == 0 &&
              !strcmp(p.req.body, ""),
          "body reset");
    http_parser_free(&p);
}

static void test_responses(void) {
    http_buf b = {0};
    http_response(&b, 200, "application/json", "{}", 2, 1, NULL);
    CHECK(!strcmp(b.p, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                       "Connection: keep-alive\r\n\r\n{}"),
          "response: %s", b.p);
    http_buf_reset(&b);
    http_response(&b, 404, NULL, "no", 2, 0, "X-A: 1\r\n");
    CHECK(!strcmp(b.p, "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\nX-A: 1\r\n\r\nno"),
          "404: %s", b.p);
    http_buf_reset(&b);
    http_response(&b, 204, NULL, "x", 1, 1, NULL);
    CHECK(!strcmp(b.p, "HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n"), "204: %s", b.p);
    http_buf_reset(&b);
    http_continue(&b);
    CHECK(!strcmp(b.p, "HTTP/1.1 100 Continue\r\n\r\n"), "100: %s", b.p);
    http_buf_reset(&b);
    http_head(&b, 200, "text/event-stream", -1, 1, "Cache-Control: no-cache\r\n");
    CHECK(!strcmp(b.p, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                       "Connection: keep-alive\r\nCache-Control: no-cache\r\n\r\n"),
          "stream head: %s", b.p);
    CHECK(!strcmp(http_reason(413), "Content Too Large") && !strcmp(http_reason(431), "Request Header Fields Too Large") &&
              !strcmp(http_reason(299), "Unknown"),
          "reasons");
    http_buf_reset(&b);
    http_chunk(&b, "hello", 5);
    http_chunk(&b, "", 0);
    http_sse(&b, "{\"a\":1}", 7);
    http_sse(&b, "x\ny\r\nz\r", 7);
    http_sse(&b, "[DONE]", 6);
    http_chunk_end(&b);
    const char want[] = "5\r\nhello\r\n"
                        "f\r\ndata: {\"a\":1}\n\n\r\n"
                        "20\r\ndata: x\ndata: y\ndata: z\ndata: \n\n\r\n"
                        "e\r\ndata: [DONE]\n\n\r\n"
                        "0\r\n\r\n";
    CHECK(b.len == sizeof want - 1 && !memcmp(b.p, want, b.len), "chunks: %s", b.p);
    /* the parser reads the writer's chunked body back */
    const char h[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    char all[512];
    memcpy(all, h, sizeof h - 1);
    memcpy(all + sizeof h - 1, b.p, b.len);
    const char *d = parse_all_ways(all, sizeof h - 1 + b.len, NULL);
    CHECK(strstr(d, "body=66:hellodata: {\"a\":1}\n\ndata: x\ndata: y\ndata: z\ndata: \n\ndata: [DONE]\n\n|"),
          "read back: %s", d);
    http_buf_free(&b);
}

static void test_auth(void) {
    static const struct {
        const char *req;
        int ok;
    } t[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sk-123\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: a\r\nauthorization: bearer   sk-123 \r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sk-12\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sk-1234\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sk-124\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Basic sk-123\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearersk-123\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sk-123\r\nAuthorization: Bearer sk-123\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        http_parser p;
        size_t used;
        if (http_parser_init(&p, NULL)) continue;
        int rc = http_feed(&p, t[i].req, strlen(t[i].req), &used);
        CHECK(rc == HTTP_DONE && http_auth_bearer(&p, "sk-123") == t[i].ok, "auth #%zu", i);
        CHECK(!http_auth_bearer(&p, "") && !http_auth_bearer(&p, NULL), "empty key matches nothing #%zu", i);
        http_parser_free(&p);
    }
}

int main(void) {
    test_requests();
    test_errors();
    test_pipelining();
    test_responses();
    test_auth();
    return t_summary("test_http");
}
