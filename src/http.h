/* http.h - HTTP/1.1 building blocks for the server (internal, not public API).
 *
 * Parser: an incremental request parser; bytes go in as they arrive
 * (http_feed), in pieces of any size, with the same result however they are
 * split. It refuses what RFC 9112 says to refuse, each with the status to
 * answer (400 malformed, 413 body too large, 414 target too long, 431 head
 * too large, 417 unknown Expect, 501 unsupported transfer coding, 505 other
 * HTTP versions) and a one-line reason: CRLF line ends only (a bare CR or LF
 * is refused, as are NULs and other control bytes), no obs-fold, no
 * whitespace before a header's colon, Content-Length digits only (identical
 * duplicates accepted, conflicting ones refused), chunked request bodies
 * decoded (extensions ignored, trailers read and dropped), chunked together
 * with Content-Length refused, Host required once in HTTP/1.1. Memory: the
 * head buffer and header table sized by the limits at init, and the body
 * buffer grown to the body's size (never past max_body); nothing else.
 * A completed request leaves the bytes after it unconsumed (*used), so a
 * pipelined request starts there after http_next.
 *
 * Responses: status line + headers + body with Content-Length, a chunked
 * stream (http_chunk, http_chunk_end), server-sent events on top of chunks,
 * "100 Continue", and a constant-time Bearer-token check. */
#ifndef PICOLM_HTTP_H
#define PICOLM_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef struct http_limits {
    size_t max_head;    /* request line + header fields, bytes (also chunked trailers) [16 KiB] */
    size_t max_target;  /* request target, bytes [4 KiB] */
    int max_headers;    /* header fields [64] */
    size_t max_body;    /* decoded body bytes [1 MiB] */
} http_limits;

typedef struct http_header {
    const char *name, *value; /* NUL-terminated, in the parser's head buffer; value without OWS */
    size_t name_len, value_len;
} http_header;

/* A parsed request; valid from HTTP_DONE until http_next / http_parser_free. */
typedef struct http_request {
    const char *method;       /* "POST" */
    const char *target;       /* as sent: "/v1/chat/completions?x=1" */
    const char *path;         /* "/v1/chat/completions" (absolute-form: the path part, "/" if none) */
    const char *query;        /* "x=1", or NULL when the target has no '?' */
    int minor;                /* HTTP/1.<minor>: 0 or 1 (1.2-1.9 read as 1.1, RFC 9110 2.5) */
    int keep_alive;           /* 1.1: unless Connection: close; 1.0: only with Connection: keep-alive */
    int expect_continue;      /* Expect: 100-continue (answer http_continue before the body) */
    int chunked;              /* the body came chunked */
    const char *body;         /* [body_len] decoded body, NUL-terminated ("" when none) */
    size_t body_len;
    const http_header *headers; /* [n_headers] in order */
    int n_headers;
} http_request;

enum { HTTP_NEED_MORE = 0, HTTP_DONE = 1, HTTP_ERROR = -1 };

typedef struct http_parser {
    http_limits lim;
    http_request req;
    int status;         /* HTTP_ERROR: the status to answer (then close the connection) */
    char err[160];      /* HTTP_ERROR: "http: ..." one line */
    int head_done;      /* the head is complete (method, target, headers are valid) */
    /* private */
    int state;
    size_t pos;         /* bytes of this request consumed so far */
    char *head;         /* [lim.max_head + 1] */
    size_t hlen, tstart, nstart, vstart, extra; /* head fill; target/name/value starts; skipped or trailer bytes */
    http_header *hdr;   /* [lim.max_headers] */
    char *body;         /* [body_cap + 1] */
    size_t body_cap, remain, line;
    int chunk_digits, trailer_count;
} http_parser;

/* 0, or -1 (out of memory). lim may be NULL; zero fields take the defaults. */
int http_parser_init(http_parser *p, const http_limits *lim);
void http_parser_free(http_parser *p);
/* Consumes bytes of buf[0..n): HTTP_NEED_MORE (all used), HTTP_DONE (*used
 * bytes were the rest of this request: the next request starts at
 * buf + *used), HTTP_ERROR (p->status, p->err). Once DONE or ERROR, feeding
 * uses nothing until http_next. */
int http_feed(http_parser *p, const void *buf, size_t n, size_t *used);
/* Ready for the next request on the connection (buffers kept). */
void http_next(http_parser *p);

/* First header named name (ASCII case-insensitive), NULL if none. */
const char *http_header_get(const http_parser *p, const char *name);
/* 1 when the request carries exactly one "Authorization: Bearer <key>" and
 * <key> equals key; the comparison takes the same time wherever they differ.
 * An empty key matches nothing. */
int http_auth_bearer(const http_parser *p, const char *key);
/* "Not Found" for 404 ... ("Unknown" for codes it does not list). */
const char *http_reason(int status);

/* ---- responses: appended to a growable buffer ---- */
typedef struct http_buf {
    char *p;
    size_t len, cap;
    int oom; /* an append failed: the buffer holds a prefix */
} http_buf;
void http_buf_reset(http_buf *b); /* len = 0, memory kept */
void http_buf_free(http_buf *b);
int http_buf_put(http_buf *b, const void *s, size_t n); /* raw bytes: 0, or -1 out of memory */

/* Status line and headers. content_type NULL: no Content-Type. body_len < 0:
 * "Transfer-Encoding: chunked" (then http_chunk ... http_chunk_end); 1xx,
 * 204 and 304 get no length header. extra: more header lines, each ending
 * in "\r\n", or NULL. Returns 0, -1 out of memory. */
int http_head(http_buf *b, int status, const char *content_type, long long body_len, int keep_alive,
              const char *extra);
/* A whole response: head with Content-Length + body. */
int http_response(http_buf *b, int status, const char *content_type, const void *body, size_t n,
                  int keep_alive, const char *extra);
int http_continue(http_buf *b); /* "HTTP/1.1 100 Continue" */
/* One chunk of a chunked body; n == 0 appends nothing (an empty chunk
 * would end the stream: that is http_chunk_end's "0\r\n\r\n"). */
int http_chunk(http_buf *b, const void *data, size_t n);
int http_chunk_end(http_buf *b);
/* One server-sent event as one chunk: "data: <line>\n" per line of data
 * (CRLF, CR and LF all split lines), then "\n". */
int http_sse(http_buf *b, const char *data, size_t n);

#endif
