/* fuzz_steer.h - what the grammar fuzz targets share: a small vocabulary
 * (every single byte, some multi-byte JSON/UTF-8 pieces, an EOS with no
 * text) and a few steps of steering driven by the fuzzer's bytes: mask with
 * a budget, take the best allowed token, accept it; also accept tokens and
 * raw bytes the grammar may reject, clone and reset. Every status is
 * checked against the API's promises (allowed count > 0 or a negative
 * status, an allowed token is accepted, a reject leaves the state usable);
 * a broken promise aborts, which libFuzzer reports. */
#ifndef PICOLM_FUZZ_STEER_H
#define PICOLM_FUZZ_STEER_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"

#define FZ_MULTI 24
static const char *const fz_multi[FZ_MULTI] = {
    "ab", "\"a\":", "[[", "{\"", "  ", "\xc3\xa9", "\xe2\x82", "\xac", "true", "null", "123", "-0.5e+1",
    "\\u00", "\"}", "]}", "\n", "aaaaaaaa", "::=", "\",\"", "0.", "\xf0\x9f\x98\x80", "\\\"", "e+", "},{"};
#define FZ_NV (1 + 256 + FZ_MULTI)

static pl_grammar_vocab *fz_vocab(void) {
    static pl_grammar_vocab *v;
    static char bytes[256];
    if (v) return v;
    const char *tok[FZ_NV];
    int32_t len[FZ_NV];
    tok[0] = "";
    len[0] = 0; /* EOS */
    for (int i = 0; i < 256; i++) {
        bytes[i] = (char)i;
        tok[1 + i] = &bytes[i];
        len[1 + i] = 1;
    }
    for (int i = 0; i < FZ_MULTI; i++) {
        tok[257 + i] = fz_multi[i];
        len[257 + i] = (int32_t)strlen(fz_multi[i]);
    }
    char err[128];
    if (pl_grammar_vocab_new(&v, tok, len, FZ_NV, 0, err, sizeof err)) abort();
    return v;
}

#define FZ_CHECK(c)                                                                   \
    do {                                                                              \
        if (!(c)) {                                                                   \
            fprintf(stderr, "fuzz: promise broken at %s:%d: %s\n", __FILE__, __LINE__, #c); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* A few steps on g driven by ctl[0..n). */
static void fz_steer(pl_grammar *g, const uint8_t *ctl, size_t n) {
    pl_grammar_vocab *v = fz_vocab();
    FZ_CHECK(pl_grammar_bind(g, v) == PL_OK);
    float lg[FZ_NV];
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n && i < 16; i++) seed = (seed ^ ctl[i]) * 0x100000001B3ull;
    size_t at = 0;
    for (int step = 0; step < 12; step++) {
        int op = at < n ? ctl[at++] : step;
        if (pl_grammar_is_done(g)) FZ_CHECK(pl_grammar_is_complete(g));
        if ((op & 7) == 7 && at < n) { /* raw bytes: may be rejected */
            size_t k = (size_t)(ctl[at] % 16) + 1;
            at++;
            if (at + k > n) k = n - at;
            int rc = pl_grammar_accept_bytes(g, (const char *)ctl + at, k);
            FZ_CHECK(rc == PL_OK || rc == PL_GRAMMAR_ERR_REJECT || rc == PL_GRAMMAR_ERR_LIMIT);
            at += k;
            continue;
        }
        if ((op & 7) == 6) { /* any token: may be rejected */
            int t = at < n ? ctl[at++] % FZ_NV : 1;
            int rc = pl_grammar_accept(g, t);
            FZ_CHECK(rc == PL_OK || rc == PL_GRAMMAR_ERR_REJECT || rc == PL_GRAMMAR_ERR_LIMIT);
            continue;
        }
        if ((op & 15) == 5) { /* a clone must steer like the original */
            pl_grammar *c = NULL;
            if (pl_grammar_clone(&c, g) == PL_OK) {
                float a[FZ_NV], b[FZ_NV];
                memset(a, 0, sizeof a);
                memset(b, 0, sizeof b);
                int ra = pl_grammar_steer(g, a, 0), rb = pl_grammar_steer(c, b, 0);
                FZ_CHECK(ra == rb);
                for (int i = 0; i < FZ_NV && ra > 0; i++) FZ_CHECK(isinf(a[i]) == isinf(b[i]));
                pl_grammar_free(c);
            }
            continue;
        }
        if ((op & 31) == 4) {
            pl_grammar_reset(g);
            continue;
        }
        for (int i = 0; i < FZ_NV; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            lg[i] = (float)(seed >> 40);
        }
        int left = (op >> 3) & 31; /* 0: no budget */
        int rc = pl_grammar_steer(g, lg, left);
        if (rc <= 0) {
            FZ_CHECK(rc == PL_GRAMMAR_ERR_DEAD_END || rc == PL_GRAMMAR_ERR_LIMIT);
            FZ_CHECK(pl_grammar_last_error(g)[0] != 0);
            return;
        }
        int best = -1, count = 0;
        for (int i = 0; i < FZ_NV; i++)
            if (!isinf(lg[i])) {
                count++;
                if (best < 0 || lg[i] > lg[best]) best = i;
            }
        FZ_CHECK(count == rc && best >= 0);
        if (best == 0) {
            FZ_CHECK(pl_grammar_is_complete(g));
            return;
        }
        rc = pl_grammar_accept(g, best);
        FZ_CHECK(rc == PL_OK || rc == PL_GRAMMAR_ERR_LIMIT); /* an allowed token is never rejected */
        if (rc) return;
    }
}

#endif
