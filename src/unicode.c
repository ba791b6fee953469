/* unicode.c - category lookup (binary search over the generated ranges,
 * a table for ASCII), White_Space, llama.cpp-compatible UTF-8 decoding and
 * GPT-2's byte-level mapping. */
#include "unicode.h"

int pl_ucat(uint32_t cp) {
    if (cp >= 0x110000) return PL_UC_UNDEF;
    int lo = 0, hi = pl_ucat_n - 1; /* last entry whose start <= cp */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((pl_ucat_ranges[mid] >> 3) <= cp) lo = mid;
        else hi = mid - 1;
    }
    return (int)(pl_ucat_ranges[lo] & 7);
}

/* PropList.txt White_Space (the list llama.cpp's generator hard-codes). */
int pl_uspace(uint32_t cp) {
    if (cp < 0x80) return (cp >= 9 && cp <= 13) || cp == 32;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

uint32_t pl_ulower_ascii(uint32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp; }

uint32_t pl_utf8_next(const uint8_t *s, size_t n, size_t *i) {
    size_t k = *i;
    uint8_t c = s[k];
    if (c < 0x80) { *i = k + 1; return c; }
    size_t len = c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (len == 0 || k + len > n) { *i = k + 1; return 0xFFFD; }
    uint32_t cp = c & (0x7F >> len);
    for (size_t j = 1; j < len; j++) {
        if ((s[k + j] & 0xC0) != 0x80) { *i = k + 1; return 0xFFFD; }
        cp = cp << 6 | (s[k + j] & 0x3F);
    }
    *i = k + len;
    return cp;
}

int pl_utf8_put(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp > 0x10FFFF) cp = 0xFFFD; /* llama.cpp throws here */
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other
 * 68 take U+0100.. in byte order. */
static int self_byte(uint32_t b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

uint32_t pl_byte_to_cp(uint8_t b) {
    if (self_byte(b)) return b;
    uint32_t n = 0; /* how many non-self bytes come before b */
    for (uint32_t x = 0; x < b; x++) n += !self_byte(x);
    return 256 + n;
}

int pl_cp_to_byte(uint32_t cp) {
    if (cp < 256) return self_byte(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t n = cp - 256;
    for (uint32_t x = 0; x < 256; x++)
        if (!self_byte(x) && n-- == 0) return (int)x;
    return -1;
}
