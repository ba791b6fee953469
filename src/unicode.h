/* unicode.h - the Unicode facts the byte-level BPE pre-tokenizers need:
 * UTF-8 decoding with llama.cpp's rules (a bad sequence becomes U+FFFD,
 * one byte consumed), the general-category class of a code point (from the
 * table tools/gen_unicode.py generates into unicode_data.c), White_Space,
 * and GPT-2's byte <-> code point mapping. No state, nothing allocated. */
#ifndef PICOLM_UNICODE_H
#define PICOLM_UNICODE_H

#include <stddef.h>
#include <stdint.h>

/* Classes, as llama.cpp's unicode_cpt_flags groups the general categories. */
enum {
    PL_UC_UNDEF = 0, /* Cn, and anything past U+10FFFF */
    PL_UC_NUMBER,    /* N* */
    PL_UC_LETTER,    /* L* */
    PL_UC_SEPARATOR, /* Z* */
    PL_UC_MARK,      /* M* */
    PL_UC_PUNCT,     /* P* */
    PL_UC_SYMBOL,    /* S* */
    PL_UC_CONTROL    /* Cc Cf Co Cs */
};

extern const char pl_unicode_version[];
extern const int pl_ucat_n;
extern const uint32_t pl_ucat_ranges[];

int pl_ucat(uint32_t cp);          /* PL_UC_* */
int pl_uspace(uint32_t cp);        /* the White_Space property */
uint32_t pl_ulower_ascii(uint32_t cp);

/* Decode one code point at s[*i] (n bytes), advancing *i, as llama.cpp's
 * unicode_cpt_from_utf8 + unicode_cpts_from_utf8 do: lead bytes announce
 * the length, only continuation bits are checked (no overlong or surrogate
 * check), and a bad sequence yields U+FFFD for one byte. May return values
 * up to 0x1FFFFF (F5-F7 leads). */
uint32_t pl_utf8_next(const uint8_t *s, size_t n, size_t *i);
/* UTF-8 of cp into out (4 bytes room); values past U+10FFFF give U+FFFD. */
int pl_utf8_put(uint32_t cp, uint8_t *out);

/* GPT-2's bytes_to_unicode: the code point standing for byte b, and back
 * (-1 when cp stands for no byte). */
uint32_t pl_byte_to_cp(uint8_t b);
int pl_cp_to_byte(uint32_t cp);

#endif
