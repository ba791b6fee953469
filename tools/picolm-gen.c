/* picolm-gen.c - writes random-weight GGUF v3 files of any architecture
 * picolm runs (llama, qwen2, qwen3, gemma, gemma2, gemma3, phi2, phi3,
 * smollm3), and re-quantizes existing ones (a minimal llama-quantize
 * without imatrix).
 *
 * Weights are deterministic noise from --seed (each row seeded from the seed,
 * the tensor's name and the row index, so the same seed gives the same float
 * weights whatever the type, thread count or chunking). Rows are generated
 * and quantized a chunk at a time, split across threads, and streamed to
 * OUT.tmp, renamed to OUT when complete: memory stays at a few MB whatever
 * the model size. Presets carry the real shapes, keys and vocabulary sizes
 * of today's small models. The tokenizer is copied from a GGUF (--vocab), or
 * synthesized: a SentencePiece-style vocabulary, or a byte-level BPE one
 * (GPT-2 byte alphabet, rank-ordered merges) built so that English text
 * tokenizes into word-sized pieces. This is a tool, not the library: it
 * prints and exits (2 on usage errors, 1 on runtime errors). Assumes a
 * little-endian host. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf.h"
#include "quant.h"

#define ALIGNMENT 32
#define CHUNK_WEIGHTS (1 << 20) /* weights per chunk: ~4 MB of floats in flight */
#define MAX_THREADS 64
#define MAX_NAME 96

static const char *usage_text =
    "usage: picolm-gen OUT.gguf [options]\n"
    "       picolm-gen OUT.gguf --from IN.gguf --type T\n"
    "\n"
    "Writes a GGUF v3 file with random weights, or (with --from) re-quantizes\n"
    "every 2-D weight of IN.gguf to T, keeping 1-D tensors in F32 and copying\n"
    "all metadata.\n"
    "\n"
    "  --preset P       tinyllama-1.1b | qwen3-0.6b | llama-3.2-1b | gemma3-1b |\n"
    "                   smollm2-360m | qwen2.5-0.5b | tiny | small (default tiny)\n"
    "  --arch A         llama qwen2 qwen3 gemma gemma2 gemma3 phi2 phi3 smollm3\n"
    "                   (default: the preset's)\n"
    "  --type T         F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K\n"
    "                   Q6_K IQ4_NL IQ4_XS Q4_K_M Q5_K_M (default Q8_0)\n"
    "  --seed N         random seed (default 1)\n"
    "  --n-embd N  --n-layer N  --n-ff N  --n-head N  --n-head-kv N  --head-dim N\n"
    "  --n-vocab N  --ctx N  --rope-base F  --rms-eps F  --swa N  --rope-scale F\n"
    "                   override the preset (--swa: sliding window; --rope-scale:\n"
    "                   linear RoPE scaling factor)\n"
    "  --tokenizer K    spm | gemma | qwen2 | qwen3 | llama3 | smollm: the\n"
    "                   synthesized vocabulary (default: the preset's)\n"
    "  --vocab FILE     copy the tokenizer.* keys of FILE (sets n_vocab)\n"
    "  --tied           no output.weight: the output reuses token_embd\n"
    "  --untied         an output.weight even where the preset ties it\n"
    "  --from FILE      convert FILE instead of generating\n"
    "  -j N             threads (default: online cores)\n"
    "  -h, --help       this text\n";

/* ------------------------------------------------------------ utilities */

static char g_tmp_path[4096]; /* removed on a runtime error */

static void die_usage(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "picolm-gen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see picolm-gen --help)\n");
    exit(2);
}

static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "picolm-gen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (g_tmp_path[0]) remove(g_tmp_path);
    exit(1);
}

/* Ctrl-C / kill: drop the partial OUT.tmp (unlink and _exit are
 * async-signal-safe). */
static void on_signal(int sig) {
    if (g_tmp_path[0]) unlink(g_tmp_path);
    _exit(128 + sig);
}

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) die_usage("%s expects an integer, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    return v;
}

static float parse_float(const char *opt, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v != v) die_usage("%s expects a number, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %s is out of range [%g, %g]", opt, s, lo, hi);
    return (float)v;
}

/* A growable byte buffer: the header, metadata and tensor table are built
 * here before anything is written. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) die("out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bb_u32(bbuf *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_strn(bbuf *b, const char *s, size_t n) {
    bb_u64(b, n);
    bb_put(b, s, n);
}
static void bb_str(bbuf *b, const char *s) { bb_strn(b, s, strlen(s)); }

/* ------------------------------------------------------------ metadata */

typedef struct {
    bbuf b;
    uint64_t n_kv;
} kvw;

static void kv_key(kvw *w, const char *key, uint32_t type) {
    bb_str(&w->b, key);
    bb_u32(&w->b, type);
    w->n_kv++;
}
static void kv_u32(kvw *w, const char *key, uint32_t v) {
    kv_key(w, key, GGUF_UINT32);
    bb_u32(&w->b, v);
}
static void kv_f32(kvw *w, const char *key, float v) {
    kv_key(w, key, GGUF_FLOAT32);
    bb_put(&w->b, &v, 4);
}
static void kv_bool(kvw *w, const char *key, int v) {
    uint8_t u = v ? 1 : 0;
    kv_key(w, key, GGUF_BOOL);
    bb_put(&w->b, &u, 1);
}
static void kv_str(kvw *w, const char *key, const char *v) {
    kv_key(w, key, GGUF_STRING);
    bb_str(&w->b, v);
}
static void kv_arr(kvw *w, const char *key, uint32_t elem_type, uint64_t n) {
    kv_key(w, key, GGUF_ARRAY);
    bb_u32(&w->b, elem_type);
    bb_u64(&w->b, n);
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Bytes of a validated value starting at p (strings walked). 0: unsupported
 * (nested arrays). */
static size_t value_bytes(uint32_t type, const uint8_t *p, uint64_t n) {
    if (type != GGUF_STRING) return scalar_size(type) * (size_t)n;
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, p + off, 8);
        off += 8 + (size_t)len;
    }
    return off;
}

/* Copy one key/value pair of a parsed file verbatim. 0 if it was skipped. */
static int kv_copy(kvw *w, const gguf_kv *kv) {
    size_t n;
    if (kv->type == GGUF_ARRAY) {
        if (kv->arr_type == GGUF_ARRAY) return 0;
        n = value_bytes(kv->arr_type, kv->data, kv->arr_n);
        if (!n && kv->arr_n) return 0;
    } else {
        n = value_bytes(kv->type, kv->data, 1);
        if (!n) return 0;
    }
    bb_strn(&w->b, kv->key.ptr, (size_t)kv->key.len);
    bb_u32(&w->b, kv->type);
    if (kv->type == GGUF_ARRAY) {
        bb_u32(&w->b, kv->arr_type);
        bb_u64(&w->b, kv->arr_n);
    }
    bb_put(&w->b, kv->data, n);
    w->n_kv++;
    return 1;
}

static int key_is(const gguf_kv *kv, const char *s) { return gguf_str_eq(kv->key, s); }

/* ------------------------------------------------------------ types */

typedef struct {
    const char *name;
    uint32_t type;  /* the type of most 2-D tensors */
    int mixed;      /* Q4_K_M / Q5_K_M: some tensors Q6_K, as llama-quantize does */
    uint32_t ftype; /* general.file_type (llama_ftype) */
} ftype_info;

static const ftype_info ftypes[] = {
    {"F32", PL_TYPE_F32, 0, 0},     {"F16", PL_TYPE_F16, 0, 1},     {"BF16", PL_TYPE_BF16, 0, 32},
    {"Q8_0", PL_TYPE_Q8_0, 0, 7},   {"Q4_0", PL_TYPE_Q4_0, 0, 2},   {"Q4_1", PL_TYPE_Q4_1, 0, 3},
    {"Q5_0", PL_TYPE_Q5_0, 0, 8},   {"Q5_1", PL_TYPE_Q5_1, 0, 9},   {"Q2_K", PL_TYPE_Q2_K, 0, 10},
    {"Q3_K", PL_TYPE_Q3_K, 0, 12},  {"Q4_K", PL_TYPE_Q4_K, 0, 15},  {"Q5_K", PL_TYPE_Q5_K, 0, 17},
    {"Q6_K", PL_TYPE_Q6_K, 0, 18},  {"Q4_K_M", PL_TYPE_Q4_K, 1, 15}, {"Q5_K_M", PL_TYPE_Q5_K, 1, 17},
    {"IQ4_NL", PL_TYPE_IQ4_NL, 0, 25}, {"IQ4_XS", PL_TYPE_IQ4_XS, 0, 30},
};

static const char *type_name(uint32_t t) {
    const pl_type_traits *tr = pl_type_traits_get(t);
    return tr ? tr->name : "?";
}

/* llama-quantize's use_more_bits: the first and last eighth of the layers
 * and every third one in between. */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int is_k_type(uint32_t t) { return (t >= PL_TYPE_Q2_K && t <= PL_TYPE_Q6_K) || t == PL_TYPE_IQ4_XS; }

/* The type of 2-D tensor `name` with rows of ne0 weights. Falls back as
 * llama-quantize does when a 256-block type does not fit the row (Q4_K ->
 * Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K / Q3_K / IQ4_XS -> IQ4_NL), then
 * to F16. */
/* Fallbacks seen so far: each (tensor kind, wanted, used) is reported once,
 * not once per layer. */
typedef struct {
    char kind[32][MAX_NAME];
    uint32_t want[32], got[32];
    int n_kinds, n_tensors;
} fallback_log;

static uint32_t pick_type(const ftype_info *ft, const char *name, int64_t ne0, int n_layer,
                          int has_output, fallback_log *fb) {
    uint32_t t = ft->type;
    int il = -1;
    if (ft->mixed) {
        if (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight")))
            t = PL_TYPE_Q6_K;
        else if (sscanf(name, "blk.%d.", &il) == 1 && (strstr(name, ".attn_v.") || strstr(name, ".ffn_down.")) &&
                 use_more_bits(il, n_layer))
            t = PL_TYPE_Q6_K;
        else if (strstr(name, ".attn_qkv.")) /* fused Q/K/V (phi3): one step up, every layer */
            t = ft->type == PL_TYPE_Q4_K ? PL_TYPE_Q5_K : PL_TYPE_Q6_K;
    }
    const uint32_t want = t;
    if (is_k_type(t) && ne0 % QK_K) {
        t = t == PL_TYPE_Q4_K ? PL_TYPE_Q5_0 : t == PL_TYPE_Q5_K ? PL_TYPE_Q5_1
          : t == PL_TYPE_Q6_K ? PL_TYPE_Q8_0 : PL_TYPE_IQ4_NL;
    }
    if (pl_row_size(t, ne0) == 0) t = PL_TYPE_F16;
    if (t != want) {
        const char *kind = name;
        int pos = 0;
        if (sscanf(name, "blk.%*d.%n", &pos) == 0 && pos > 0) kind = name + pos;
        int k = 0;
        while (k < fb->n_kinds && !(fb->want[k] == want && fb->got[k] == t && !strcmp(fb->kind[k], kind))) k++;
        if (k == fb->n_kinds) {
            fprintf(stderr, "picolm-gen: %s%s: row length %lld does not fit %s, using %s (as llama-quantize does)\n",
                    kind == name ? "" : "blk.*.", kind, (long long)ne0, type_name(want), type_name(t));
            if (fb->n_kinds < 32) {
                snprintf(fb->kind[k], MAX_NAME, "%s", kind);
                fb->want[k] = want;
                fb->got[k] = t;
                fb->n_kinds++;
            }
        }
        fb->n_tensors++;
    }
    return t;
}

/* ------------------------------------------------------------ random weights */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* n roughly Gaussian values with the given mean and standard deviation.
 * Each is the sum of the four 16-bit lanes of one xorshift64* draw (an
 * Irwin-Hall(4) variable: bell-shaped, tails cut at 3.46 sigma), which is
 * ~10x cheaper than Box-Muller and plenty for noise weights. */
static void gauss_row(uint64_t seed, int64_t n, float mean, float std, float *dst) {
    uint64_t x = splitmix64(&seed) | 1;
    const float scale = std * (1.7320508f / 65536.0f); /* 1/sigma of the sum = sqrt(3)/65536 */
    for (int64_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        const uint64_t r = x * 0x2545f4914f6cdd1dull;
        const uint64_t a = (r & 0x0000ffff0000ffffull) + ((r >> 16) & 0x0000ffff0000ffffull);
        const uint32_t sum = (uint32_t)(a & 0xffffffffu) + (uint32_t)(a >> 32);
        dst[i] = mean + ((float)sum - 131070.0f) * scale;
    }
}

/* ------------------------------------------------------------ vocabulary */

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word-start marker */

/* Common English words, most frequent first. */
static const char *common_words =
    "the of and to a in is it you that he was for on are with as I his they be at one have this "
    "from or had by not word but what some we can out other were all there when up use your how "
    "said an each she which do their time if will way about many then them write would like so "
    "these her long make thing see him two has look more day could go come did number sound no "
    "most people my over know water than call first who may down side been now find any new work "
    "part take get place made live where after back little only round man year came show every "
    "good me give our under name very through just form sentence great think say help low line "
    "differ turn cause much mean before move right boy old too same tell does set three want air "
    "well also play small end put home read hand port large spell add even land here must big high "
    "such follow act why ask men change went light kind off need house picture try us again animal "
    "point mother world near build self earth father head stand own page should country found "
    "answer school grow study still learn plant cover food sun four between state keep eye never "
    "last let thought city tree cross farm hard start might story saw far sea draw left late run "
    "while press close night real life few north open seem together next white children begin got "
    "walk example ease paper group always music those both mark often letter until mile river car "
    "feet care second book carry took science eat room friend began idea fish mountain stop once "
    "base hear horse cut sure watch color face wood main enough plain girl usual young ready above "
    "ever red list though feel talk bird soon body dog family direct pose leave song measure door "
    "product black short numeral class wind question happen complete ship area half rock order fire "
    "south problem piece told knew pass since top whole king space heard best hour better true "
    "during hundred five remember step early hold west ground interest reach fast verb sing listen "
    "six table travel less morning ten simple several vowel toward war lay against pattern slow "
    "center love person money serve appear road map rain rule govern pull cold notice voice unit "
    "power town fine certain fly fall lead cry dark machine note wait plan figure star box noun "
    "field rest correct able pound done beauty drive stood contain front teach week final gave "
    "green oh quick develop ocean warm free minute strong special mind behind clear tail produce "
    "fact street inch multiply nothing course stay wheel full force blue object decide surface "
    "deep moon island foot system busy test record boat common gold possible plane stead dry "
    "wonder laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring "
    "yes distant fill east paint language among Hello hello once upon princess dragon castle";

static const char *suffixes = "ing ed er es ly tion ment ness able ous est al ity ive ful less s y en";

/* More frequent words (past tenses, nouns of everyday prose) past the
 * 1000 of common_words. */
static const char *more_words =
    "important library village key kept pay wrote month later happy shelf science scientist neighbour "
    "neighbor newspaper explain because could would should people between through during without within "
    "against among however another something nothing everything anything someone everyone government company "
    "program service information development business community university report research political market "
    "national international experience education health student member law history art human local social "
    "public private available different similar general major various recent whole poor rich likely "
    "least usually already yet perhaps probably maybe almost quite rather really actually especially finally "
    "suddenly quickly slowly carefully told knew thought gave took went made said found brought began became "
    "felt heard held paid sent spent understood won wore lost met sat spoke stood taught caught bought fought "
    "built chose drew drove fell flew forgot froze grew hid hung kept laid led lent lit meant rode rose shook "
    "shot sang sank slept slid spun stole struck swam swore threw woke wrote also although whether while "
    "whose whom yourself myself himself herself itself ourselves themselves today tomorrow yesterday tonight "
    "morning evening afternoon weekend minute hour second moment year century decade history future past "
    "present problem solution result reason example process method model data value level rate cost price "
    "amount number percent total average account area region city village town street road house room door "
    "window wall floor kitchen garden office school class teacher lesson book page story chapter letter word "
    "language message question answer idea plan project team game player match ball score goal point win "
    "lose friend family mother father brother sister son daughter child baby girl boy woman man people person "
    "husband wife parent king queen prince princess castle dragon forest river mountain lake sea ocean island "
    "sky sun moon star light dark night fire water earth wind rain snow ice tree flower grass animal bird dog "
    "cat horse fish food bread meat fruit apple coffee tea milk sugar salt doctor hospital medicine computer "
    "phone internet software code file system network server user screen keyboard program function variable "
    "string number list array object class method return value error test build run start stop open close "
    "read write send receive create delete update change move turn begin end continue decide choose "
    "remember forget believe understand explain describe discuss consider suggest require include provide "
    "allow support develop produce increase reduce improve protect prevent happen become seem appear remain";

static const char *bpe_prefixes = "un re in dis over under out pre sub inter non mis de co en";

static const char *bpe_suffixes = "s ed ing er ers es ly est ness ment ful less able al y ion ions ity ive ous";

/* prefix + word (n bytes) + suffix spelled as English does (love+ed =
 * loved, study+es = studies, story+s = stories), optionally capitalized,
 * into w (room for prefix + n + suffix + 2); returns the length. */
static size_t spell(char *w, const char *prefix, const char *s, size_t n, const char *suffix, int capitalize) {
    const size_t lp = strlen(prefix), lsf = strlen(suffix);
    memcpy(w, prefix, lp);
    memcpy(w + lp, s, n);
    size_t m = lp + n;
    const int vowel_suffix = lsf && strchr("aeiouy", suffix[0]);
    const int cons_y = n >= 2 && s[n - 1] == 'y' && !strchr("aeiou", s[n - 2]);
    if (vowel_suffix && s[n - 1] == 'e') m--;
    else if (lsf && cons_y && suffix[0] != 'i' && strcmp(suffix, "ly")) w[m - 1] = 'i';
    const char *sfx = cons_y && !strcmp(suffix, "s") ? "es" : suffix;
    const size_t ls = strlen(sfx);
    memcpy(w + m, sfx, ls + 1);
    m += ls;
    if (capitalize && w[lp] >= 'a' && w[lp] <= 'z') w[lp] = (char)(w[lp] - 'a' + 'A');
    return m;
}

typedef struct {
    char **piece;
    int n, cap;
    uint32_t *set; /* open addressing: index+1, 0 = empty */
    uint32_t mask;
} vocab;

/* FNV-1a's high bits through a multiply-xorshift finalizer: FNV alone
 * clusters the lexicographic n-grams into long probe runs. */
static uint32_t str_hash(const char *s) {
    uint64_t h = fnv1a(s);
    h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
    return (uint32_t)(h >> 32);
}

static void vocab_add(vocab *v, const char *s) {
    if (v->n >= v->cap) return;
    uint32_t i = str_hash(s) & v->mask;
    for (; v->set[i]; i = (i + 1) & v->mask)
        if (!strcmp(v->piece[v->set[i] - 1], s)) return;
    char *c = malloc(strlen(s) + 1);
    if (!c) die("out of memory");
    strcpy(c, s);
    v->piece[v->n] = c;
    v->set[i] = (uint32_t)++v->n;
}

/* "▁" + word and all its prefixes (so the SPM merges can always build it:
 * the first two symbols of a word always form a piece). */
static void vocab_add_word(vocab *v, const char *prefix, const char *w, int capitalize) {
    char buf[64];
    size_t p = strlen(prefix), n = strlen(w);
    if (p + n >= sizeof buf) return;
    memcpy(buf, prefix, p);
    memcpy(buf + p, w, n + 1);
    if (capitalize && buf[p] >= 'a' && buf[p] <= 'z') buf[p] = (char)(buf[p] - 'a' + 'A');
    for (size_t k = p ? p + 1 : 1; k <= p + n; k++) {
        const char save = buf[k];
        buf[k] = 0;
        vocab_add(v, buf);
        buf[k] = save;
    }
}

static void vocab_add_list(vocab *v, const char *prefix, const char *list, int capitalize, int max_words) {
    char w[64];
    int count = 0;
    for (const char *s = list; *s && count < max_words;) {
        while (*s == ' ') s++;
        size_t n = strcspn(s, " ");
        if (n && n < sizeof w) {
            memcpy(w, s, n);
            w[n] = 0;
            vocab_add_word(v, prefix, w, capitalize);
            count++;
        }
        s += n;
    }
}

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct {
    const char *text;
    uint8_t type;
} special_tok;

/* A synthesized vocabulary's layout: its special tokens (ids as the real
 * model has them), which of them are BOS/EOS/UNK/PAD, and the flags. */
typedef struct {
    const char *name;       /* --tokenizer */
    int bpe;                /* 0: SentencePiece ("llama"), 1: byte-level BPE ("gpt2") */
    const char *pre;        /* tokenizer.ggml.pre (BPE) */
    const special_tok *sp;  /* specials: first (SPM, smollm) or after the regular tokens */
    int n_sp;
    int n_reserved;         /* a run of numbered specials (llama3's reserved, gemma's unused) ... */
    int reserved_at;        /* ... inserted before sp[reserved_at] ... */
    const char *reserved_fmt; /* ... spelled with this format of K ... */
    int reserved_from;      /* ... K from reserved_from ... */
    uint8_t reserved_type;  /* ... of this token type */
    int specials_first;
    int n_regular;          /* BPE: regular tokens of the real vocabulary (the rest: [PADn]) */
    const char *bos, *eos, *unk, *pad; /* texts of specials, NULL: not written */
    int add_bos, add_space_prefix;
    int digit_groups;       /* the pre-tokenizer keeps up to 3 digits together (llama3) */
    const char *chat_template; /* tokenizer.chat_template, NULL: none */
    int rich_words;         /* SPM: also the BPE vocabularies' word forms (gemma; llama's stays as it was) */
} vocab_spec;

static const special_tok SP_LLAMA[] = {{"<unk>", TT_UNKNOWN}, {"<s>", TT_CONTROL}, {"</s>", TT_CONTROL}};

/* Gemma 3 (tokenizer.json of google/gemma-3-1b-it): <pad> <eos> <bos> <unk>
 * <mask> [multimodal], <unused0..98> (the numbered run of its VOCABS row),
 * then <start_of_turn>=105 and <end_of_turn>=106; the rest of the 262144 are
 * pieces here. */
static const special_tok SP_GEMMA[] = {
    {"<pad>", TT_CONTROL}, {"<eos>", TT_CONTROL},  {"<bos>", TT_CONTROL},       {"<unk>", TT_UNKNOWN},
    {"<mask>", TT_USER},   {"[multimodal]", TT_USER}, {"<start_of_turn>", TT_CONTROL}, {"<end_of_turn>", TT_CONTROL},
};

/* Qwen2.5 / Qwen3 (tokenizer.json; the same ids and types as
 * ../shared/testdata/vocab/vocab-qwen3.gguf): 151643.., then [PADn] to
 * 151936. Qwen2.5 stops at <|file_sep|>. */
static const special_tok SP_QWEN[] = {
    {"<|endoftext|>", TT_CONTROL},     {"<|im_start|>", TT_CONTROL},   {"<|im_end|>", TT_CONTROL},
    {"<|object_ref_start|>", TT_CONTROL}, {"<|object_ref_end|>", TT_CONTROL}, {"<|box_start|>", TT_CONTROL},
    {"<|box_end|>", TT_CONTROL},       {"<|quad_start|>", TT_CONTROL}, {"<|quad_end|>", TT_CONTROL},
    {"<|vision_start|>", TT_CONTROL},  {"<|vision_end|>", TT_CONTROL}, {"<|vision_pad|>", TT_CONTROL},
    {"<|image_pad|>", TT_CONTROL},     {"<|video_pad|>", TT_CONTROL},  {"<tool_call>", TT_USER},
    {"</tool_call>", TT_USER},         {"<|fim_prefix|>", TT_CONTROL}, {"<|fim_middle|>", TT_CONTROL},
    {"<|fim_suffix|>", TT_CONTROL},    {"<|fim_pad|>", TT_CONTROL},    {"<|repo_name|>", TT_CONTROL},
    {"<|file_sep|>", TT_CONTROL},      {"<tool_response>", TT_USER},   {"</tool_response>", TT_USER},
    {"<think>", TT_USER},              {"</think>", TT_USER},
};

/* Llama 3.2 (tokenizer.json of meta-llama/Llama-3.2-1B-Instruct):
 * 128000..128010 named, then <|reserved_special_token_3..247|> to 128255. */
static const special_tok SP_LLAMA3[] = {
    {"<|begin_of_text|>", TT_CONTROL},          {"<|end_of_text|>", TT_CONTROL},
    {"<|reserved_special_token_0|>", TT_CONTROL}, {"<|reserved_special_token_1|>", TT_CONTROL},
    {"<|finetune_right_pad_id|>", TT_CONTROL},  {"<|reserved_special_token_2|>", TT_CONTROL},
    {"<|start_header_id|>", TT_CONTROL},        {"<|end_header_id|>", TT_CONTROL},
    {"<|eom_id|>", TT_CONTROL},                 {"<|eot_id|>", TT_CONTROL},
    {"<|python_tag|>", TT_CONTROL},
};

/* SmolLM2 (tokenizer_config.json of HuggingFaceTB/SmolLM2-360M-Instruct):
 * its 17 specials come first, ids 0..16. */
static const special_tok SP_SMOLLM[] = {
    {"<|endoftext|>", TT_CONTROL},   {"<|im_start|>", TT_CONTROL},   {"<|im_end|>", TT_CONTROL},
    {"<repo_name>", TT_CONTROL},     {"<reponame>", TT_CONTROL},     {"<file_sep>", TT_CONTROL},
    {"<filename>", TT_CONTROL},      {"<gh_stars>", TT_CONTROL},     {"<issue_start>", TT_CONTROL},
    {"<issue_comment>", TT_CONTROL}, {"<issue_closed>", TT_CONTROL}, {"<jupyter_start>", TT_CONTROL},
    {"<jupyter_text>", TT_CONTROL},  {"<jupyter_code>", TT_CONTROL}, {"<jupyter_output>", TT_CONTROL},
    {"<jupyter_script>", TT_CONTROL}, {"<empty_output>", TT_CONTROL},
};

/* Chat templates: short Jinja in the shape of each family's real one, with
 * the markers picolm's detection (and llama.cpp's) keys on: ChatML plus
 * <think> (Qwen3) or <tool_response> (Qwen2.5), Llama 3's headers, Gemma's
 * turns; SmolLM2's is plain ChatML. */
#define CHATML_LOOP                                                                                          \
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + " \
    "'\\n' }}{%- endfor %}"
static const char TPL_QWEN3[] =
    CHATML_LOOP "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined "
    "and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}";
static const char TPL_QWEN2[] =
    "{%- if tools %}{{- '<|im_start|>system\\n# Tools\\n<tools>' }}{%- for tool in tools %}{{- tool | tojson }}"
    "{%- endfor %}{{- '</tools><|im_end|>\\n' }}{%- endif %}{%- for message in messages %}{%- if message.role == "
    "'tool' %}{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' "
    "}}{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
static const char TPL_CHATML[] = CHATML_LOOP "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
static const char TPL_LLAMA3[] =
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if "
    "add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
static const char TPL_GEMMA[] =
    "{{ bos_token }}{%- for message in messages %}{%- set role = 'model' if message['role'] == 'assistant' else "
    "message['role'] %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{%- endif %}";
#undef CHATML_LOOP

#define NSP(a) (int)(sizeof a / sizeof a[0])
/* bos/eos/add_bos as the instruct models' GGUF conversions have them. */
static const vocab_spec VOCABS[] = {
    /* TinyLlama's SPM without a template: picolm's default (zephyr) is its format */
    {"spm", 0, NULL, SP_LLAMA, NSP(SP_LLAMA), 0, 0, NULL, 0, 0, 1, 0, "<s>", "</s>", "<unk>", NULL, 1, 1, 0, NULL, 0},
    {"gemma", 0, NULL, SP_GEMMA, NSP(SP_GEMMA), 99, 6, "<unused%d>", 0, TT_USER, 1, 0, "<bos>", "<eos>", "<unk>",
     "<pad>", 1, 0, 0, TPL_GEMMA, 1},
    {"qwen2", 1, "qwen2", SP_QWEN, 22, 0, 0, NULL, 0, 0, 0, 151643, "<|endoftext|>", "<|im_end|>", NULL,
     "<|endoftext|>", 0, 0, 0, TPL_QWEN2, 0},
    {"qwen3", 1, "qwen2", SP_QWEN, NSP(SP_QWEN), 0, 0, NULL, 0, 0, 0, 151643, "<|endoftext|>", "<|im_end|>", NULL,
     "<|endoftext|>", 0, 0, 0, TPL_QWEN3, 0},
    {"llama3", 1, "llama-bpe", SP_LLAMA3, NSP(SP_LLAMA3), 245, NSP(SP_LLAMA3), "<|reserved_special_token_%d|>", 3,
     TT_CONTROL, 0, 128000, "<|begin_of_text|>", "<|eot_id|>", NULL, NULL, 1, 0, 1, TPL_LLAMA3, 0},
    {"smollm", 1, "smollm", SP_SMOLLM, NSP(SP_SMOLLM), 0, 0, NULL, 0, 0, 1, 49152 - NSP(SP_SMOLLM), "<|im_start|>",
     "<|im_end|>", "<|endoftext|>", "<|im_end|>", 0, 0, 0, TPL_CHATML, 0},
};

static int n_specials(const vocab_spec *vs) { return vs->n_sp + vs->n_reserved; }

/* The k-th special token of the layout: its text (in buf when numbered)
 * and type. */
static const char *special_at(const vocab_spec *vs, int k, char *buf, size_t cap, int32_t *type) {
    if (k >= vs->reserved_at && k < vs->reserved_at + vs->n_reserved) {
        snprintf(buf, cap, vs->reserved_fmt, vs->reserved_from + k - vs->reserved_at);
        *type = vs->reserved_type;
        return buf;
    }
    if (k >= vs->reserved_at) k -= vs->n_reserved;
    *type = vs->sp[k].type;
    return vs->sp[k].text;
}

/* The position of special `text` among the layout's specials. */
static int special_index(const vocab_spec *vs, const char *text) {
    char buf[64];
    int32_t type;
    for (int k = 0; k < n_specials(vs); k++)
        if (!strcmp(special_at(vs, k, buf, sizeof buf, &type), text)) return k;
    die("internal: special %s missing", text);
    return -1;
}
#undef NSP

static const vocab_spec *find_vocab_spec(const char *name) {
    for (size_t i = 0; i < sizeof VOCABS / sizeof VOCABS[0]; i++)
        if (!strcmp(VOCABS[i].name, name)) return &VOCABS[i];
    return NULL;
}

/* SPM vocabulary: the specials, the 256 byte tokens, then pieces in
 * decreasing score: characters, "▁x", common words with their prefixes,
 * capitalized words, suffixes, then letter pairs and triples (with and
 * without "▁") until n_vocab. Without a space prefix (gemma) the first word
 * of a text has no "▁": capitalized bare words are added too. */
static void synth_vocab(vocab *v, int n_vocab, const vocab_spec *vs) {
    v->cap = n_vocab;
    v->piece = calloc((size_t)n_vocab, sizeof *v->piece);
    uint32_t size = 1024;
    while (size < 2u * (uint32_t)n_vocab) size *= 2;
    v->set = calloc(size, sizeof *v->set);
    v->mask = size - 1;
    if (!v->piece || !v->set) die("out of memory");
    char sbuf[64];
    int32_t stype;
    for (int i = 0; i < n_specials(vs); i++) vocab_add(v, special_at(vs, i, sbuf, sizeof sbuf, &stype));
    char buf[32];
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab_add(v, buf);
    }
    vocab_add(v, SPM_SPACE);
    const char *singles = "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,'\"-?!:;()/&%$#@*+=[]_<>";
    for (const char *s = singles; *s; s++) {
        buf[0] = *s;
        buf[1] = 0;
        vocab_add(v, buf);
    }
    for (const char *s = singles; *s && *s != '0'; s++) {
        snprintf(buf, sizeof buf, SPM_SPACE "%c", *s);
        vocab_add(v, buf);
    }
    vocab_add_list(v, SPM_SPACE, common_words, 0, 1 << 30);
    vocab_add_list(v, SPM_SPACE, common_words, 1, 150);
    vocab_add_list(v, "", suffixes, 0, 1 << 30);
    vocab_add_list(v, "", common_words, 0, 100); /* words inside compounds */
    if (!vs->add_space_prefix) vocab_add_list(v, "", common_words, 1, 150);
    if (vs->rich_words) { /* more words and their inflections, as the BPE vocabularies have */
        vocab_add_list(v, SPM_SPACE, more_words, 0, 1 << 30);
        const char *lists[2] = {common_words, more_words};
        for (const char *sf = bpe_suffixes; *sf && v->n < v->cap;) {
            const size_t ns = strcspn(sf, " ");
            char sx[16], w[80];
            snprintf(sx, sizeof sx, "%.*s", (int)ns, sf);
            for (int l = 0; l < 2; l++)
                for (const char *p = lists[l]; *p && v->n < v->cap;) {
                    while (*p == ' ') p++;
                    const size_t n = strcspn(p, " ");
                    if (n && n + ns < 40) {
                        spell(w, "", p, n, sx, 0);
                        vocab_add_word(v, SPM_SPACE, w, 0);
                    }
                    p += n;
                }
            sf += ns;
            while (*sf == ' ') sf++;
        }
    }
    /* letter n-grams in lexicographic order: "▁ab" "ab" ..., then length 3 ... */
    char s[16];
    for (int len = 2; len <= 6 && v->n < v->cap; len++) {
        int idx[8] = {0};
        for (;;) {
            for (int k = 0; k < len; k++) s[k] = (char)('a' + idx[k]);
            s[len] = 0;
            snprintf(buf, sizeof buf, SPM_SPACE "%s", s);
            vocab_add(v, buf);
            vocab_add(v, s);
            if (v->n >= v->cap) break;
            int k = len - 1;
            while (k >= 0 && ++idx[k] == 26) idx[k--] = 0;
            if (k < 0) break;
        }
    }
    if (v->n < v->cap) die("cannot synthesize %d distinct pieces", n_vocab);
}

static int vocab_id(const vocab *v, const char *s) {
    for (uint32_t i = str_hash(s) & v->mask; v->set[i]; i = (i + 1) & v->mask)
        if (!strcmp(v->piece[v->set[i] - 1], s)) return (int)v->set[i] - 1;
    return -1;
}

static void write_vocab(kvw *w, const vocab *v, const vocab_spec *vs) {
    const int n_fixed = n_specials(vs) + 256; /* specials and bytes: score 0 */
    char sbuf[64];
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) bb_str(&w->b, v->piece[i]);
    kv_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) {
        const float sc = i < n_fixed ? 0.0f : -(float)(i - n_fixed);
        bb_put(&w->b, &sc, 4);
    }
    kv_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) {
        int32_t t = i < n_fixed ? TT_BYTE : TT_NORMAL;
        if (i < n_specials(vs)) special_at(vs, i, sbuf, sizeof sbuf, &t);
        bb_put(&w->b, &t, 4);
    }
    if (vs->bos) kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)vocab_id(v, vs->bos));
    if (vs->eos) kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)vocab_id(v, vs->eos));
    if (vs->unk) kv_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)vocab_id(v, vs->unk));
    if (vs->pad) kv_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)vocab_id(v, vs->pad));
    kv_bool(w, "tokenizer.ggml.add_bos_token", vs->add_bos);
    kv_bool(w, "tokenizer.ggml.add_eos_token", 0);
    if (!vs->add_space_prefix) kv_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    if (vs->chat_template) kv_str(w, "tokenizer.chat_template", vs->chat_template);
}

static void vocab_free(vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->piece[i]);
    free(v->piece);
    free(v->set);
}

/* ------------------------------------------------------------ byte-level BPE vocabulary
 *
 * Tokens are byte strings; the file spells them in GPT-2's byte-to-unicode
 * alphabet (printable bytes stand for themselves, the others for U+0100..).
 * Token i < 256 is the byte GPT-2 puts at rank i. Then each piece to learn
 * (a word with its leading space, a suffix, a number...) is first run
 * through the merges learned so far, exactly as the tokenizer will (lowest
 * rank first, leftmost on ties); what is left is joined left to right by
 * new merges, ranked after all the earlier ones. Since the new ranks are
 * higher than any an earlier piece used, every earlier piece still
 * tokenizes to one token; every merge names two tokens and yields one. */

typedef struct {
    uint8_t *text;       /* token bytes back to back */
    size_t text_n, text_cap;
    uint32_t *off;       /* [cap] */
    uint8_t *len;        /* [cap] (pieces are < 64 bytes) */
    int n, cap;          /* regular tokens */
    uint32_t *tset, tmask;       /* open addressing: id + 1, 0 = empty */
    int32_t (*merge)[3];         /* left, right, result, in rank order */
    int n_merge, merge_cap;
    uint32_t *mset, mmask;       /* pair -> rank + 1 */
    int byte_id[256];
} bpe_vocab;

#define BPE_MAX_PIECE 63

static uint32_t bytes_hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return (h ^ (h >> 15)) * 0x2c1b3c6du;
}
static uint32_t pair_hash(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32 | (uint32_t)b) * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(x >> 32);
}

static int bpe_find(const bpe_vocab *v, const uint8_t *p, size_t n) {
    for (uint32_t i = bytes_hash(p, n) & v->tmask; v->tset[i]; i = (i + 1) & v->tmask) {
        const int id = (int)v->tset[i] - 1;
        if (v->len[id] == n && !memcmp(v->text + v->off[id], p, n)) return id;
    }
    return -1;
}

static int bpe_add_token(bpe_vocab *v, const uint8_t *p, size_t n) {
    if (v->n >= v->cap || n > BPE_MAX_PIECE) return -1;
    if (v->text_n + n > v->text_cap) {
        v->text_cap = 2 * v->text_cap + n;
        if (!(v->text = realloc(v->text, v->text_cap))) die("out of memory");
    }
    memcpy(v->text + v->text_n, p, n);
    v->off[v->n] = (uint32_t)v->text_n;
    v->len[v->n] = (uint8_t)n;
    v->text_n += n;
    uint32_t i = bytes_hash(p, n) & v->tmask;
    while (v->tset[i]) i = (i + 1) & v->tmask;
    v->tset[i] = (uint32_t)++v->n;
    return v->n - 1;
}

static int bpe_rank(const bpe_vocab *v, int32_t a, int32_t b) {
    for (uint32_t i = pair_hash(a, b) & v->mmask; v->mset[i]; i = (i + 1) & v->mmask) {
        const int r = (int)v->mset[i] - 1;
        if (v->merge[r][0] == a && v->merge[r][1] == b) return r;
    }
    return -1;
}

/* The merge a+b (new, ranked last) and its result token; -1 when the
 * vocabulary is full. */
static int bpe_add_merge(bpe_vocab *v, int32_t a, int32_t b) {
    uint8_t buf[2 * BPE_MAX_PIECE];
    const size_t la = v->len[a], lb = v->len[b];
    if (la + lb > BPE_MAX_PIECE) return -1;
    memcpy(buf, v->text + v->off[a], la);
    memcpy(buf + la, v->text + v->off[b], lb);
    int r = bpe_find(v, buf, la + lb);
    if (r < 0 && (r = bpe_add_token(v, buf, la + lb)) < 0) return -1;
    if (v->n_merge == v->merge_cap) {
        v->merge_cap *= 2;
        if (!(v->merge = realloc(v->merge, (size_t)v->merge_cap * sizeof *v->merge))) die("out of memory");
        /* the pair table holds at most half the slots filled */
        free(v->mset);
        uint32_t size = 2;
        while (size < 2u * (uint32_t)v->merge_cap) size *= 2;
        if (!(v->mset = calloc(size, sizeof *v->mset))) die("out of memory");
        v->mmask = size - 1;
        for (int k = 0; k < v->n_merge; k++) {
            uint32_t i = pair_hash(v->merge[k][0], v->merge[k][1]) & v->mmask;
            while (v->mset[i]) i = (i + 1) & v->mmask;
            v->mset[i] = (uint32_t)k + 1;
        }
    }
    const int k = v->n_merge++;
    v->merge[k][0] = a;
    v->merge[k][1] = b;
    v->merge[k][2] = r;
    uint32_t i = pair_hash(a, b) & v->mmask;
    while (v->mset[i]) i = (i + 1) & v->mmask;
    v->mset[i] = (uint32_t)k + 1;
    return r;
}

/* Make the n bytes at p one token (see above). 0 when the vocabulary is full. */
static int bpe_learn(bpe_vocab *v, const char *p, size_t n) {
    int32_t sym[BPE_MAX_PIECE];
    if (n == 0 || n > BPE_MAX_PIECE) return 1;
    if (bpe_find(v, (const uint8_t *)p, n) >= 0) return 1;
    int ns = (int)n;
    for (size_t i = 0; i < n; i++) sym[i] = v->byte_id[(uint8_t)p[i]];
    for (;;) { /* the existing merges, as the tokenizer applies them */
        int best = -1, at = -1;
        for (int i = 0; i + 1 < ns; i++) {
            const int r = bpe_rank(v, sym[i], sym[i + 1]);
            if (r >= 0 && (best < 0 || r < best)) best = r, at = i;
        }
        if (best < 0) break;
        sym[at] = v->merge[best][2];
        memmove(sym + at + 1, sym + at + 2, (size_t)(ns - at - 2) * sizeof *sym);
        ns--;
    }
    while (ns > 1) { /* then new ones, left to right */
        const int r = bpe_add_merge(v, sym[0], sym[1]);
        if (r < 0) return 0;
        sym[0] = r;
        memmove(sym + 1, sym + 2, (size_t)(ns - 2) * sizeof *sym);
        ns--;
    }
    return v->n < v->cap;
}

static int bpe_learn_str(bpe_vocab *v, const char *s) { return bpe_learn(v, s, strlen(s)); }

/* Each word of a space-separated list, with prefix and suffix, optionally
 * capitalized; up to max_words words. 0 when full. */
static int bpe_learn_list(bpe_vocab *v, const char *prefix, const char *list, const char *suffix, int capitalize,
                          int max_words) {
    char w[2 * BPE_MAX_PIECE + 4];
    int count = 0;
    const size_t lp = strlen(prefix), lsf = strlen(suffix);
    for (const char *s = list; *s && count < max_words;) {
        while (*s == ' ') s++;
        const size_t n = strcspn(s, " ");
        if (n && lp + n + lsf <= BPE_MAX_PIECE) {
            if (!bpe_learn(v, w, spell(w, prefix, s, n, suffix, capitalize))) return 0;
            count++;
        }
        s += n;
    }
    return 1;
}

static const char *bpe_bigrams =
    "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de "
    "hi ri ro ic ne ea ra ce li ch ll be ma si om ur ca el ta la ns di fo ho pe ec pr no ct us ac ot il tr "
    "ly nc et ut ss so rs un lo wa ge ie wh ee wi em ad ol rt po we na ul ni ts mo ow pa im mi ai sh ir su "
    "id os iv ia am fi ci vi pl ig tu ev ld ry mp fe bl ab gh ty op wo sa ay ex ke fr oo av ag if ap gr od "
    "bo sp rd do uc bu ei ov by rm ep tt oc fa ef cu rn sc gi da yo cr cl du ga qu ue ff ba ey ls va um pp";
static const char *bpe_trigrams =
    "ing ion ent the and tio ati for her ter hat tha ere con res ver all ons nce men ith ted ers pro thi wit "
    "are ess not ive was ect rea com eve per int est sta cti ica ist ear ain one our iti rat nte tin ine der "
    "ome man pre rom tra whi ave str act ill ure ide ove cal ble out sti tic oun enc ore ant ity fro art tur "
    "ity tion ment ness able ous ful less ally ings ated ation ical ence ance ious ible ally ities ions";
/* what follows words: the pre-tokenizer cuts ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
static const char *bpe_punct[] = {
    "\n", "\n\n", "\n\n\n", ".\n", ".\n\n", ",\n", ":\n", ";\n", "!\n", "?\n", " (", " \"", " '", " -", " --",
    "...", " ...", ").", "),", ")\n", "\".", "\",", ".\"", ",\"", "?\"", "!\"", "'s", "'t", "'re", "'ve", "'m",
    "'ll", "'d", " =", " ==", " +", " {", " }", "()", "();", "{\n", "}\n", " [", " <", " >", " /", "//", " //",
    " *", "**", " #", "##", "###", " &", " |", " ||", " &&", " $", " %", " @", " :", "::", " ->", "->", " =>",
    "  ", "   ", "    ", "        ", "\t", "\t\t", "\n    ", "\n        ", "\n\t", " \xe2\x80\x94", "\xe2\x80\x94",
    "\xe2\x80\x93", " \xe2\x80\x93", "\xe2\x80\x99", "\xe2\x80\x99s", " \xe2\x80\x9c", "\xe2\x80\x9d",
    "\xe2\x80\xa6", "\xc3\xa9", "\xc3\xa8", "\xc3\xa0", "\xc3\xbc", "\xc3\xb6", "\xc3\xa4", "\xc3\xb1", "\xc3\xa7",
    "\xc2\xb0", "\xe2\x82\xac", "\xc2\xa3", "\xc2\xa9",
};

/* GPT-2's byte order: '!'..'~', '¡'..'¬', '®'..'ÿ', then the other bytes. */
static void gpt2_bytes(int *order) {
    int n = 0, used[256] = {0};
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) order[n++] = b, used[b] = 1;
    for (int b = 0; b < 256; b++)
        if (!used[b]) order[n++] = b;
}

/* The code point standing for byte b in GPT-2's alphabet. */
static unsigned gpt2_char(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) return (unsigned)b;
    unsigned k = 0; /* rank of b among the unprintable bytes */
    for (int c = 0; c < b; c++)
        if (!((c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || (c >= 0xae && c <= 0xff))) k++;
    return 256 + k;
}

/* n_regular regular tokens (bytes + merged pieces). */
static void synth_bpe(bpe_vocab *v, int n_regular, const vocab_spec *vs) {
    memset(v, 0, sizeof *v);
    v->cap = n_regular;
    v->off = malloc((size_t)n_regular * sizeof *v->off);
    v->len = malloc((size_t)n_regular);
    uint32_t size = 1024;
    while (size < 2u * (uint32_t)n_regular) size *= 2;
    v->tset = calloc(size, sizeof *v->tset);
    v->tmask = size - 1;
    v->merge_cap = 1024;
    v->merge = malloc((size_t)v->merge_cap * sizeof *v->merge);
    v->mset = calloc(2048, sizeof *v->mset);
    v->mmask = 2047;
    if (!v->off || !v->len || !v->tset || !v->merge || !v->mset) die("out of memory");
    int order[256];
    gpt2_bytes(order);
    for (int i = 0; i < 256; i++) {
        const uint8_t b = (uint8_t)order[i];
        v->byte_id[b] = bpe_add_token(v, &b, 1);
    }
    char buf[2 * BPE_MAX_PIECE];
    /* frequent letter pairs, " x" for every letter, spaces and newlines,
     * frequent triples and suffixes: what real merges start with */
    int ok = bpe_learn_list(v, "", bpe_bigrams, "", 0, 1 << 30);
    for (int c = 0; ok && c < 52; c++) {
        snprintf(buf, sizeof buf, " %c", c < 26 ? 'a' + c : 'A' + c - 26);
        ok = bpe_learn_str(v, buf);
    }
    ok = ok && bpe_learn_list(v, "", bpe_trigrams, "", 0, 1 << 30);
    /* words: " w" for all, then bare and capitalized forms of the frequent */
    ok = ok && bpe_learn_list(v, " ", common_words, "", 0, 1 << 30);
    ok = ok && bpe_learn_list(v, "", common_words, "", 0, 300);
    ok = ok && bpe_learn_list(v, " ", common_words, "", 1, 300);
    ok = ok && bpe_learn_list(v, "", common_words, "", 1, 300);
    ok = ok && bpe_learn_list(v, " ", more_words, "", 0, 1 << 30);
    ok = ok && bpe_learn_list(v, "", "user assistant system tool model", "", 0, 1 << 30); /* chat roles */
    for (size_t i = 0; ok && i < sizeof bpe_punct / sizeof bpe_punct[0]; i++) ok = bpe_learn_str(v, bpe_punct[i]);
    if (vs->digit_groups) /* Llama 3 has every 2- and 3-digit group */
        for (int k = 0; ok && k < 1100; k++) {
            snprintf(buf, sizeof buf, k < 100 ? "%02d" : "%03d", k < 100 ? k : k - 100);
            ok = bpe_learn_str(v, buf);
        }
    /* then inflections, prefixed forms and compounds until full */
    const char *sf = bpe_suffixes;
    while (ok && *sf) {
        const size_t n = strcspn(sf, " ");
        char s2[16];
        snprintf(s2, sizeof s2, "%.*s", (int)n, sf);
        ok = bpe_learn_list(v, " ", common_words, s2, 0, 1 << 30) && bpe_learn_list(v, " ", more_words, s2, 0, 1 << 30) &&
             bpe_learn_list(v, "", common_words, s2, 0, 1 << 30);
        sf += n;
        while (*sf == ' ') sf++;
    }
    for (const char *pf = bpe_prefixes; ok && *pf;) {
        const size_t n = strcspn(pf, " ");
        snprintf(buf, sizeof buf, " %.*s", (int)n, pf);
        ok = bpe_learn_list(v, buf, common_words, "", 0, 1 << 30) && bpe_learn_list(v, buf + 1, common_words, "", 0, 1 << 30);
        pf += n;
        while (*pf == ' ') pf++;
    }
    for (const char *sf2 = bpe_suffixes; ok && *sf2;) {
        const size_t n = strcspn(sf2, " ");
        char s2[16];
        snprintf(s2, sizeof s2, "%.*s", (int)n, sf2);
        ok = bpe_learn_list(v, " ", common_words, s2, 1, 1 << 30);
        sf2 += n;
        while (*sf2 == ' ') sf2++;
    }
    /* compounds " w1w2": one list pass per first word */
    for (const char *w1 = common_words; ok && *w1;) {
        while (*w1 == ' ') w1++;
        const size_t n = strcspn(w1, " ");
        snprintf(buf, sizeof buf, " %.*s", (int)(n < 40 ? n : 40), w1);
        ok = bpe_learn_list(v, buf, common_words, "", 0, 1 << 30);
        w1 += n;
    }
    if (ok && v->n < v->cap) die("cannot synthesize %d BPE tokens (got %d)", n_regular, v->n);
}

/* A token's text in GPT-2's alphabet, appended to buf (cap >= 2*n + 1). */
static size_t gpt2_spell(const uint8_t *p, size_t n, const unsigned *cp, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned c = cp[p[i]];
        if (c < 0x80) out[k++] = (char)c;
        else {
            out[k++] = (char)(0xc0 | (c >> 6));
            out[k++] = (char)(0x80 | (c & 0x3f));
        }
    }
    return k;
}

/* Writes the vocabulary: regular tokens, the specials (first or after), then
 * [PADn] to n_vocab; the merges; the ids. */
static void write_bpe(kvw *w, const bpe_vocab *v, const vocab_spec *vs, int n_vocab) {
    unsigned cp[256];
    for (int b = 0; b < 256; b++) cp[b] = gpt2_char(b);
    const int n_special = n_specials(vs);
    const int reg0 = vs->specials_first ? n_special : 0, sp0 = vs->specials_first ? 0 : v->n;
    char buf[4 * BPE_MAX_PIECE + 64];
    kv_str(w, "tokenizer.ggml.model", "gpt2");
    kv_str(w, "tokenizer.ggml.pre", vs->pre);
    kv_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, (uint64_t)n_vocab);
    for (int id = 0; id < n_vocab; id++) {
        if (id >= reg0 && id < reg0 + v->n) {
            const int t = id - reg0;
            bb_strn(&w->b, buf, gpt2_spell(v->text + v->off[t], v->len[t], cp, buf));
        } else if (id >= sp0 && id < sp0 + n_special) {
            int32_t type;
            bb_str(&w->b, special_at(vs, id - sp0, buf, sizeof buf, &type));
        } else {
            snprintf(buf, sizeof buf, "[PAD%d]", id), bb_str(&w->b, buf);
        }
    }
    kv_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, (uint64_t)n_vocab);
    for (int id = 0; id < n_vocab; id++) {
        int32_t t = TT_UNUSED;
        if (id >= reg0 && id < reg0 + v->n) t = TT_NORMAL;
        else if (id >= sp0 && id < sp0 + n_special) special_at(vs, id - sp0, buf, sizeof buf, &t);
        bb_put(&w->b, &t, 4);
    }
    kv_arr(w, "tokenizer.ggml.merges", GGUF_STRING, (uint64_t)v->n_merge);
    for (int k = 0; k < v->n_merge; k++) {
        const int a = v->merge[k][0], b = v->merge[k][1];
        size_t n = gpt2_spell(v->text + v->off[a], v->len[a], cp, buf);
        buf[n++] = ' ';
        n += gpt2_spell(v->text + v->off[b], v->len[b], cp, buf + n);
        bb_strn(&w->b, buf, n);
    }
    const char *names[4] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                            "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"};
    const char *texts[4] = {vs->bos, vs->eos, vs->unk, vs->pad};
    for (int i = 0; i < 4; i++) {
        if (!texts[i]) continue;
        kv_u32(w, names[i], (uint32_t)(sp0 + special_index(vs, texts[i])));
    }
    kv_bool(w, "tokenizer.ggml.add_bos_token", vs->add_bos);
    if (vs->chat_template) kv_str(w, "tokenizer.chat_template", vs->chat_template);
}

static void bpe_free(bpe_vocab *v) {
    free(v->text);
    free(v->off);
    free(v->len);
    free(v->tset);
    free(v->merge);
    free(v->mset);
}

/* ------------------------------------------------------------ input files */

typedef struct {
    void *map;
    size_t size;
    int fd;
    gguf_file g;
} infile;

static void infile_open(infile *f, const char *path) {
    char err[256];
    struct stat st;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) die("cannot open %s: %s", path, strerror(errno));
    if (fstat(f->fd, &st) != 0 || st.st_size <= 0) die("cannot read %s", path);
    f->size = (size_t)st.st_size;
    /* Only the header pages are touched; tensor data is read with pread so
     * a large input does not grow our resident set. */
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (f->map == MAP_FAILED) die("cannot map %s: %s", path, strerror(errno));
    if (gguf_parse(&f->g, f->map, f->size, err, sizeof err) != 0) die("%s: %s", path, err);
}

static void infile_close(infile *f) {
    gguf_free(&f->g);
    munmap(f->map, f->size);
    close(f->fd);
}

/* ------------------------------------------------------------ tensor plan */

typedef struct {
    char name[MAX_NAME];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t offset, nbytes;
    float mean, std;          /* generated: N(mean, std) */
    const float *fixed;       /* generated: these values (one row) instead */
    const gguf_tensor *src;   /* converted: the input tensor */
} tplan;

typedef struct {
    tplan *t;
    int n, cap;
} plan;

static tplan *plan_add(plan *p, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        tplan *nt = realloc(p->t, (size_t)p->cap * sizeof *nt);
        if (!nt) die("out of memory");
        p->t = nt;
    }
    tplan *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    if (strlen(name) >= MAX_NAME) die("tensor name too long: %s", name);
    strcpy(t->name, name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    return t;
}

static int64_t t_rows(const tplan *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

/* ------------------------------------------------------------ workers */

typedef struct {
    const tplan *t;
    uint64_t seed, name_hash;
    int64_t r0, nr;    /* rows of this chunk */
    uint8_t *out;      /* nr quantized rows */
    size_t out_row;
    const uint8_t *src; /* nr input rows (convert) */
    size_t src_row;
    float *scratch[MAX_THREADS]; /* ne0 floats per thread */
    int nth;
} chunk_job;

typedef struct {
    chunk_job *job;
    int ith;
} worker_arg;

static void run_rows(const chunk_job *j, int ith) {
    const tplan *t = j->t;
    const int64_t ne0 = t->ne[0];
    const int64_t a = j->nr * ith / j->nth, b = j->nr * (ith + 1) / j->nth;
    const pl_type_traits *to = pl_type_traits_get(t->type);
    const pl_type_traits *from = t->src ? pl_type_traits_get(t->src->type) : NULL;
    float *row = j->scratch[ith];
    for (int64_t r = a; r < b; r++) {
        if (t->src) {
            from->to_float(j->src + (size_t)r * j->src_row, row, ne0);
        } else if (t->fixed) {
            memcpy(row, t->fixed, (size_t)ne0 * sizeof *row);
        } else {
            uint64_t s = j->seed ^ j->name_hash;
            uint64_t rs = splitmix64(&s) ^ (uint64_t)(j->r0 + r) * 0xd1b54a32d192ed03ull;
            gauss_row(rs, ne0, t->mean, t->std, row);
        }
        to->from_float(row, j->out + (size_t)r * j->out_row, ne0);
    }
}

static void *worker_main(void *p) {
    worker_arg *w = p;
    run_rows(w->job, w->ith);
    return NULL;
}

static void run_chunk(chunk_job *j) {
    pthread_t th[MAX_THREADS];
    worker_arg args[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 1; i < j->nth; i++) {
        args[i].job = j;
        args[i].ith = i;
        started[i] = pthread_create(&th[i], NULL, worker_main, &args[i]) == 0;
        if (!started[i]) run_rows(j, i);
    }
    run_rows(j, 0);
    for (int i = 1; i < j->nth; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

/* ------------------------------------------------------------ architectures and presets */

/* What the generator writes per architecture: the tensors and keys that
 * src/model.c's load_hparams / load_tensors read for it (src/arch.c's
 * table). */
typedef struct {
    const char *name;
    uint8_t qk_norm;    /* attn_q_norm / attn_k_norm [head_dim] */
    uint8_t post_norms; /* post_attention_norm / post_ffw_norm */
    uint8_t phi2;       /* LayerNorm with biases, parallel block (no ffn_norm), GELU FFN (no gate), every bias */
    uint8_t fused;      /* attn_qkv and ffn_up = [gate; up] (phi3) */
    uint8_t swa;        /* writes attention.sliding_window (required by gemma2/gemma3; phi3: all layers) */
    uint8_t softcaps;   /* attn_logit_softcapping / final_logit_softcapping (gemma2) */
    int swa_default;    /* window when the preset has none */
} gen_arch;

static const gen_arch GEN_ARCHES[] = {
    /* name      qkn post phi2 fused swa cap window */
    {"llama",   0,  0,   0,   0,    0,  0,  0},
    {"qwen2",   0,  0,   0,   0,    0,  0,  0},
    {"qwen3",   1,  0,   0,   0,    0,  0,  0},
    {"gemma",   0,  0,   0,   0,    0,  0,  0},
    {"gemma2",  0,  1,   0,   0,    1,  1,  4096},
    {"gemma3",  1,  1,   0,   0,    1,  0,  512},
    {"phi2",    0,  0,   1,   0,    0,  0,  0},
    {"phi3",    0,  0,   0,   1,    1,  0,  2047},
    {"smollm3", 0,  0,   0,   0,    0,  0,  0},
};

static const gen_arch *find_arch(const char *name) {
    for (size_t i = 0; i < sizeof GEN_ARCHES / sizeof GEN_ARCHES[0]; i++)
        if (!strcmp(GEN_ARCHES[i].name, name)) return &GEN_ARCHES[i];
    return NULL;
}

typedef struct {
    const char *arch, *tokenizer;
    int n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_base, rms_eps;
    int head_dim;       /* 0: n_embd / n_head (no key_length/value_length keys) */
    int tied;           /* no output.weight */
    int qkv_bias;       /* attn_q/k/v.bias (qwen2) */
    int swa;            /* sliding window, 0: the architecture's default */
    float rope_scale;   /* linear RoPE scaling factor, 0: none */
    float l3_factor;    /* Llama 3 rope_freqs: factor, 0: no rope_freqs.weight */
    float l3_low, l3_high;
    int l3_orig_ctx;
} hparams;

typedef struct {
    const char *out, *from, *vocab, *preset;
    const ftype_info *ft;
    const gen_arch *ga;
    const vocab_spec *vs;
    uint64_t seed;
    int n_threads;
    hparams hp;
    int set_vocab_n; /* --n-vocab given */
    int gen_only;    /* some option that makes no sense with --from */
} options;

/* Real shapes, from each model's Hugging Face config.json (and the GGUF
 * keys llama.cpp's convert_hf_to_gguf.py derives from it):
 *  - TinyLlama/TinyLlama-1.1B-Chat-v1.0: 2048, 22 layers, 32/4 heads, ff 5632, vocab 32000.
 *  - Qwen/Qwen3-0.6B: hidden 1024, 28 layers, 16/8 heads, head_dim 128, ff 3072,
 *    vocab 151936, rope_theta 1e6, rms 1e-6, max_position_embeddings 40960,
 *    tie_word_embeddings true, q_norm/k_norm, no attention bias.
 *  - meta-llama/Llama-3.2-1B(-Instruct): hidden 2048, 16 layers, 32/8 heads, head_dim 64,
 *    ff 8192, vocab 128256, rope_theta 5e5, rms 1e-5, max_position_embeddings
 *    131072, rope_scaling llama3 {factor 32, low_freq_factor 1, high_freq_factor
 *    4, original_max_position_embeddings 8192} (rope_freqs.weight in GGUF), tied.
 *  - google/gemma-3-1b-it: hidden 1152, 26 layers, 4/1 heads, head_dim 256, ff 6912,
 *    vocab 262144, sliding_window 512 (5 local : 1 global), rope_theta 1e6,
 *    rope_local_base_freq 1e4, rope_scaling null (the 4B+ have linear 8: use
 *    --rope-scale 8), rms 1e-6, max_position_embeddings 32768, tied.
 *  - HuggingFaceTB/SmolLM2-360M-Instruct: hidden 960, 32 layers, 15/5 heads, ff 2560,
 *    vocab 49152, rope_theta 1e5, rms 1e-5, max_position_embeddings 8192, tied.
 *  - Qwen/Qwen2.5-0.5B-Instruct: hidden 896, 24 layers, 14/2 heads, ff 4864, vocab
 *    151936, rope_theta 1e6, rms 1e-6, max_position_embeddings 32768, Q/K/V biases, tied. */
static const struct {
    const char *name;
    hparams hp;
} presets[] = {
    {"tinyllama-1.1b", {"llama", "spm", 2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, 1e-5f, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"tiny", {"llama", "spm", 256, 768, 2, 8, 2, 512, 2048, 10000.0f, 1e-5f, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    /* n_ff 1536 (not LLaMA's 8/3 ratio, 1408) keeps every row a multiple of
     * 256, so K-quant benchmarks measure that one type. */
    {"small", {"llama", "spm", 512, 1536, 4, 8, 4, 4096, 2048, 10000.0f, 1e-5f, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"qwen3-0.6b", {"qwen3", "qwen3", 1024, 3072, 28, 16, 8, 151936, 40960, 1e6f, 1e-6f, 128, 1, 0, 0, 0, 0, 0, 0, 0}},
    {"llama-3.2-1b",
     {"llama", "llama3", 2048, 8192, 16, 32, 8, 128256, 131072, 5e5f, 1e-5f, 0, 1, 0, 0, 0, 32.0f, 1.0f, 4.0f, 8192}},
    {"gemma3-1b", {"gemma3", "gemma", 1152, 6912, 26, 4, 1, 262144, 32768, 1e6f, 1e-6f, 256, 1, 0, 512, 0, 0, 0, 0, 0}},
    {"smollm2-360m", {"llama", "smollm", 960, 2560, 32, 15, 5, 49152, 8192, 1e5f, 1e-5f, 0, 1, 0, 0, 0, 0, 0, 0, 0}},
    {"qwen2.5-0.5b", {"qwen2", "qwen2", 896, 4864, 24, 14, 2, 151936, 32768, 1e6f, 1e-6f, 0, 1, 1, 0, 0, 0, 0, 0, 0}},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])
#define PRESET_LIST "tinyllama-1.1b, qwen3-0.6b, llama-3.2-1b, gemma3-1b, smollm2-360m, qwen2.5-0.5b, tiny, small"

enum { O_EMBD, O_LAYER, O_FF, O_HEAD, O_HEAD_KV, O_VOCAB, O_CTX, O_ROPE, O_EPS, O_HD, O_SWA, O_RSCALE, O_N };

static void parse_args(options *o, int argc, char **argv) {
    hparams over;
    int set[O_N] = {0}, tied = -1;
    const char *arch = NULL, *tok = NULL;
    memset(&over, 0, sizeof over);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (die_usage("%s needs a value", a), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(a, "--preset")) {
            o->preset = VALUE();
            o->gen_only = 1;
        } else if (!strcmp(a, "--type")) {
            const char *v = VALUE();
            o->ft = NULL;
            for (size_t k = 0; k < sizeof ftypes / sizeof ftypes[0]; k++)
                if (!strcmp(v, ftypes[k].name)) o->ft = &ftypes[k];
            if (!o->ft) die_usage("unknown --type '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            const char *v = VALUE();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') die_usage("--seed expects a non-negative integer, got '%s'", v);
            o->seed = s;
            o->gen_only = 1;
        } else if (!strcmp(a, "--n-embd")) over.n_embd = (int)parse_long(a, VALUE(), 1, 1 << 16), set[O_EMBD] = 1;
        else if (!strcmp(a, "--n-layer")) over.n_layer = (int)parse_long(a, VALUE(), 1, 1024), set[O_LAYER] = 1;
        else if (!strcmp(a, "--n-ff")) over.n_ff = (int)parse_long(a, VALUE(), 1, 1 << 18), set[O_FF] = 1;
        else if (!strcmp(a, "--n-head")) over.n_head = (int)parse_long(a, VALUE(), 1, 1 << 12), set[O_HEAD] = 1;
        else if (!strcmp(a, "--n-head-kv")) over.n_head_kv = (int)parse_long(a, VALUE(), 1, 1 << 12), set[O_HEAD_KV] = 1;
        else if (!strcmp(a, "--head-dim")) over.head_dim = (int)parse_long(a, VALUE(), 2, 1024), set[O_HD] = 1;
        else if (!strcmp(a, "--n-vocab")) over.n_vocab = (int)parse_long(a, VALUE(), 260, 1 << 20), set[O_VOCAB] = 1;
        else if (!strcmp(a, "--ctx")) over.n_ctx = (int)parse_long(a, VALUE(), 1, 1 << 24), set[O_CTX] = 1;
        else if (!strcmp(a, "--rope-base")) over.rope_base = parse_float(a, VALUE(), 1e-3, 1e12), set[O_ROPE] = 1;
        else if (!strcmp(a, "--rms-eps")) over.rms_eps = parse_float(a, VALUE(), 1e-12, 1.0), set[O_EPS] = 1;
        else if (!strcmp(a, "--swa")) over.swa = (int)parse_long(a, VALUE(), 1, 1 << 24), set[O_SWA] = 1;
        else if (!strcmp(a, "--rope-scale")) over.rope_scale = parse_float(a, VALUE(), 1e-3, 1e6), set[O_RSCALE] = 1;
        else if (!strcmp(a, "--arch")) arch = VALUE(), o->gen_only = 1;
        else if (!strcmp(a, "--tokenizer")) tok = VALUE(), o->gen_only = 1;
        else if (!strcmp(a, "--vocab")) o->vocab = VALUE(), o->gen_only = 1;
        else if (!strcmp(a, "--tied")) tied = 1, o->gen_only = 1;
        else if (!strcmp(a, "--untied")) tied = 0, o->gen_only = 1;
        else if (!strcmp(a, "--from")) o->from = VALUE();
        else if (!strcmp(a, "-j")) o->n_threads = (int)parse_long(a, VALUE(), 1, MAX_THREADS);
        else if (a[0] == '-' && a[1]) die_usage("unknown option %s", a);
        else if (!o->out) o->out = a;
        else die_usage("unexpected argument '%s'", a);
#undef VALUE
    }
    if (!o->out) die_usage("no output file given");
    for (int k = 0; k < O_N; k++) o->gen_only |= set[k];
    if (o->from) {
        if (o->gen_only) die_usage("--from takes only --type and -j");
        if (!o->ft) die_usage("--from needs --type");
        return;
    }
    if (!o->ft) o->ft = &ftypes[3]; /* Q8_0 */
    if (!o->preset) o->preset = "tiny";
    size_t k = 0;
    while (k < N_PRESETS && strcmp(presets[k].name, o->preset)) k++;
    if (k == N_PRESETS) die_usage("unknown --preset '%s' (" PRESET_LIST ")", o->preset);
    hparams *h = &o->hp;
    *h = presets[k].hp;
    if (arch) h->arch = arch;
    if (!(o->ga = find_arch(h->arch)))
        die_usage("unknown --arch '%s' (llama, qwen2, qwen3, gemma, gemma2, gemma3, phi2, phi3, smollm3)", h->arch);
    if (tok) h->tokenizer = tok;
    if (!(o->vs = find_vocab_spec(h->tokenizer)))
        die_usage("unknown --tokenizer '%s' (spm, gemma, qwen2, qwen3, llama3, smollm)", h->tokenizer);
    if (tied >= 0) h->tied = tied;
    if (arch && strcmp(arch, presets[k].hp.arch)) h->qkv_bias = !strcmp(arch, "qwen2");
    if (set[O_EMBD]) h->n_embd = over.n_embd;
    if (set[O_LAYER]) h->n_layer = over.n_layer;
    if (set[O_FF]) h->n_ff = over.n_ff;
    if (set[O_HEAD]) h->n_head = over.n_head;
    if (set[O_HEAD_KV]) h->n_head_kv = over.n_head_kv;
    if (set[O_HD]) h->head_dim = over.head_dim;
    if (set[O_VOCAB]) h->n_vocab = over.n_vocab;
    if (set[O_CTX]) h->n_ctx = over.n_ctx;
    if (set[O_ROPE]) h->rope_base = over.rope_base;
    if (set[O_EPS]) h->rms_eps = over.rms_eps;
    if (set[O_SWA]) h->swa = over.swa;
    if (set[O_RSCALE]) h->rope_scale = over.rope_scale;
    o->set_vocab_n = set[O_VOCAB];
    if (set[O_HEAD] && !set[O_HEAD_KV] && h->n_head % h->n_head_kv) h->n_head_kv = h->n_head; /* --n-head alone: MHA */
    if (!h->head_dim) {
        if (h->n_embd % h->n_head)
            die_usage("--n-embd %d is not a multiple of --n-head %d (give --head-dim)", h->n_embd, h->n_head);
        if ((h->n_embd / h->n_head) % 2) die_usage("head size %d must be even (RoPE)", h->n_embd / h->n_head);
    } else if (h->head_dim % 2) {
        die_usage("--head-dim %d must be even (RoPE)", h->head_dim);
    }
    if (h->n_head_kv > h->n_head || h->n_head % h->n_head_kv)
        die_usage("--n-head %d is not a multiple of --n-head-kv %d", h->n_head, h->n_head_kv);
    if (o->ga->swa && !h->swa) h->swa = o->ga->swa_default;
    if (!o->ga->swa && set[O_SWA]) die_usage("--swa: architecture %s has no sliding window", h->arch);
    if (h->swa > h->n_ctx) h->swa = h->n_ctx; /* the loader refuses a window past the context */
    if (o->vocab && set[O_VOCAB]) die_usage("--vocab sets n_vocab: drop --n-vocab");
    if (!o->vocab) {
        const int n_special = n_specials(o->vs);
        if (h->n_vocab < n_special + 256 + 64)
            die_usage("--n-vocab %d is too small for the %s vocabulary (at least %d)", h->n_vocab, o->vs->name,
                      n_special + 256 + 64);
    }
}

/* Llama 3's rope_freqs: one divisor per rotated pair (llama.cpp's
 * convert_hf_to_gguf.py, LlamaModel.generate_extra_tensors): wavelengths
 * below orig_ctx/high keep their frequency, above orig_ctx/low are divided
 * by factor, and in between the two are blended. */
static void llama3_rope_freqs(const hparams *h, int n_rot, float *out) {
    const double lo_wl = (double)h->l3_orig_ctx / h->l3_low, hi_wl = (double)h->l3_orig_ctx / h->l3_high;
    for (int i = 0; i < n_rot / 2; i++) {
        const double freq = 1.0 / pow((double)h->rope_base, (double)(2 * i) / (double)n_rot);
        const double wl = 2.0 * 3.14159265358979323846 / freq;
        if (wl < hi_wl) out[i] = 1.0f;
        else if (wl > lo_wl) out[i] = h->l3_factor;
        else {
            const double smooth = ((double)h->l3_orig_ctx / wl - h->l3_low) / (h->l3_high - h->l3_low);
            out[i] = (float)(1.0 / ((1.0 - smooth) / h->l3_factor + smooth));
        }
    }
}

/* ------------------------------------------------------------ main */

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    parse_args(&o, argc, argv);
    if (!o.n_threads) {
        long nc = 1;
#ifdef _SC_NPROCESSORS_ONLN
        nc = sysconf(_SC_NPROCESSORS_ONLN);
#endif
        o.n_threads = nc < 1 ? 1 : nc > MAX_THREADS ? MAX_THREADS : (int)nc;
    }
    const double t0 = now_s();

    kvw w;
    memset(&w, 0, sizeof w);
    plan p;
    memset(&p, 0, sizeof p);
    infile in, voc;
    int have_in = 0;
    fallback_log fb;
    memset(&fb, 0, sizeof fb);
    hparams *h = &o.hp;
    char label[128];

    if (o.from) {
        /* ---- convert: copy metadata, re-type every tensor */
        infile_open(&in, o.from);
        have_in = 1;
        const gguf_file *g = &in.g;
        uint32_t n_layer = 0;
        gguf_str arch = {"llama", 5};
        char bc[96];
        if (gguf_get_str(g, "general.architecture", &arch) != 0 || arch.len > 64) arch = (gguf_str){"llama", 5};
        snprintf(bc, sizeof bc, "%.*s.block_count", (int)arch.len, arch.ptr);
        if (gguf_get_u32(g, bc, &n_layer) != 0) {
            for (uint64_t i = 0; i < g->n_tensors; i++) {
                int il;
                char nm[MAX_NAME];
                snprintf(nm, sizeof nm, "%.*s", (int)g->tensors[i].name.len, g->tensors[i].name.ptr);
                if (sscanf(nm, "blk.%d.", &il) == 1 && il >= 0 && (uint32_t)il + 1 > n_layer) n_layer = (uint32_t)il + 1;
            }
        }
        const int has_output = gguf_find_tensor(g, "output.weight") != NULL;
        int saw_ft = 0, saw_qv = 0;
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const gguf_kv *kv = &g->kv[i];
            if (key_is(kv, "general.alignment")) continue; /* written below */
            if (key_is(kv, "general.file_type")) {
                kv_u32(&w, "general.file_type", o.ft->ftype);
                saw_ft = 1;
            } else if (key_is(kv, "general.quantization_version")) {
                kv_u32(&w, "general.quantization_version", 2);
                saw_qv = 1;
            } else if (!kv_copy(&w, kv)) {
                fprintf(stderr, "picolm-gen: dropping key %.*s (nested array)\n", (int)kv->key.len, kv->key.ptr);
            }
        }
        if (!saw_ft) kv_u32(&w, "general.file_type", o.ft->ftype);
        if (!saw_qv) kv_u32(&w, "general.quantization_version", 2); /* llama-quantize always writes it */
        kv_u32(&w, "general.alignment", ALIGNMENT);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor *st = &g->tensors[i];
            char nm[MAX_NAME];
            if (st->name.len >= MAX_NAME) die("%s: tensor name too long", o.from);
            snprintf(nm, sizeof nm, "%.*s", (int)st->name.len, st->name.ptr);
            const pl_type_traits *tr = pl_type_traits_get(st->type);
            if (!tr || !tr->to_float) die("%s: %s has type %u, which we cannot read", o.from, nm, st->type);
            tplan *t = plan_add(&p, nm, st->n_dims, st->ne[0], st->ne[1]);
            t->ne[2] = st->ne[2];
            t->ne[3] = st->ne[3];
            t->src = st;
            t->type = st->n_dims < 2 ? PL_TYPE_F32
                                     : pick_type(o.ft, nm, st->ne[0], (int)n_layer, has_output, &fb);
        }
        snprintf(label, sizeof label, "%s -> %s", o.from, o.ft->name);
    } else {
        /* ---- generate */
        const gen_arch *ga = o.ga;
        const vocab_spec *vs = o.vs;
        vocab v;
        bpe_vocab bv;
        memset(&v, 0, sizeof v);
        memset(&bv, 0, sizeof bv);
        if (o.vocab) {
            infile_open(&voc, o.vocab);
            const gguf_kv *kt = gguf_find(&voc.g, "tokenizer.ggml.tokens");
            if (!kt || kt->type != GGUF_ARRAY || kt->arr_type != GGUF_STRING || kt->arr_n == 0 || kt->arr_n > (1u << 24))
                die("%s: no usable tokenizer.ggml.tokens", o.vocab);
            h->n_vocab = (int)kt->arr_n;
        } else if (vs->bpe) {
            const int n_special = n_specials(vs);
            int n_regular = h->n_vocab - n_special;
            if (n_regular > vs->n_regular) n_regular = vs->n_regular;
            synth_bpe(&bv, n_regular, vs);
        } else {
            synth_vocab(&v, h->n_vocab, vs);
        }
        const int head_dim = h->head_dim ? h->head_dim : h->n_embd / h->n_head;
        /* phi2 rotates 40% of each head (partial_rotary_factor 0.4) */
        const int n_rot = ga->phi2 ? (head_dim * 2 / 5) & ~1 : head_dim;
        const char *an = ga->name;
        char key[96];
#define AK(suffix) (snprintf(key, sizeof key, "%s.%s", an, suffix), key)
        kv_str(&w, "general.architecture", an);
        snprintf(label, sizeof label, "picolm-gen %s random %s", o.preset, o.ft->name);
        kv_str(&w, "general.name", label);
        kv_u32(&w, "general.alignment", ALIGNMENT);
        kv_u32(&w, AK("context_length"), (uint32_t)h->n_ctx);
        kv_u32(&w, AK("embedding_length"), (uint32_t)h->n_embd);
        kv_u32(&w, AK("block_count"), (uint32_t)h->n_layer);
        kv_u32(&w, AK("feed_forward_length"), (uint32_t)h->n_ff);
        kv_u32(&w, AK("rope.dimension_count"), (uint32_t)n_rot);
        kv_u32(&w, AK("attention.head_count"), (uint32_t)h->n_head);
        kv_u32(&w, AK("attention.head_count_kv"), (uint32_t)h->n_head_kv);
        kv_f32(&w, AK(ga->phi2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon"), h->rms_eps);
        kv_f32(&w, AK("rope.freq_base"), h->rope_base);
        kv_u32(&w, AK("vocab_size"), (uint32_t)h->n_vocab);
        if (h->head_dim) { /* as llama.cpp writes them for qwen3 and gemma */
            kv_u32(&w, AK("attention.key_length"), (uint32_t)head_dim);
            kv_u32(&w, AK("attention.value_length"), (uint32_t)head_dim);
        }
        if (ga->swa && h->swa) kv_u32(&w, AK("attention.sliding_window"), (uint32_t)h->swa);
        if (ga->softcaps) { /* Gemma 2's config.json */
            kv_f32(&w, AK("attn_logit_softcapping"), 50.0f);
            kv_f32(&w, AK("final_logit_softcapping"), 30.0f);
        }
        if (h->rope_scale > 0) {
            kv_str(&w, AK("rope.scaling.type"), "linear");
            kv_f32(&w, AK("rope.scaling.factor"), h->rope_scale);
        }
#undef AK
        kv_u32(&w, "general.file_type", o.ft->ftype);
        kv_u32(&w, "general.quantization_version", 2);
        if (o.vocab) {
            int is_llama = 0, seen[5] = {0};
            static const char *defaults[5] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                              "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                                              "tokenizer.ggml.add_eos_token"};
            for (uint64_t i = 0; i < voc.g.n_kv; i++) {
                const gguf_kv *kv = &voc.g.kv[i];
                if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
                for (int k = 0; k < 5; k++) seen[k] |= key_is(kv, defaults[k]);
                if (key_is(kv, "tokenizer.ggml.model") && kv->type == GGUF_STRING)
                    is_llama = value_bytes(GGUF_STRING, kv->data, 1) == 8 + 5 && !memcmp(kv->data + 8, "llama", 5);
                if (!kv_copy(&w, kv))
                    fprintf(stderr, "picolm-gen: dropping key %.*s (nested array)\n", (int)kv->key.len, kv->key.ptr);
            }
            if (is_llama) { /* the SPM defaults, where the file leaves them out */
                if (!seen[0]) kv_u32(&w, defaults[0], 1);
                if (!seen[1]) kv_u32(&w, defaults[1], 2);
                if (!seen[2]) kv_u32(&w, defaults[2], 0);
                if (!seen[3]) kv_bool(&w, defaults[3], 1);
                if (!seen[4]) kv_bool(&w, defaults[4], 0);
            }
        } else if (vs->bpe) {
            write_bpe(&w, &bv, vs, h->n_vocab);
            bpe_free(&bv);
        } else {
            write_vocab(&w, &v, vs);
            vocab_free(&v);
        }
        if (o.vocab) infile_close(&voc);

        /* Tensors in the order the forward pass reads them, named and shaped
         * as load_tensors binds them. Matrices get std 0.02 (GPT-2's init: a
         * unit-RMS input gives outputs of RMS 0.02*sqrt(n_in) ~ 0.9 at
         * n_embd 2048, so 22 layers stay tame); norms 1 + small noise;
         * biases small noise. */
        const int64_t E = h->n_embd, Q = (int64_t)head_dim * h->n_head, KV = (int64_t)head_dim * h->n_head_kv,
                      F = h->n_ff, V = h->n_vocab, HD = head_dim;
        const int has_output = !h->tied;
        tplan *t;
#define MAT(nm, a, b) (t = plan_add(&p, nm, 2, a, b), t->std = 0.02f, \
                       t->type = pick_type(o.ft, nm, a, h->n_layer, has_output, &fb))
#define VEC(nm, n, m) (t = plan_add(&p, nm, 1, n, 1), t->mean = m, t->std = 0.02f, t->type = PL_TYPE_F32)
#define NORM(nm) VEC(nm, E, 1.0f)
        char nm[MAX_NAME];
#define L(s) (snprintf(nm, sizeof nm, "blk.%d.%s", il, s), nm)
        MAT("token_embd.weight", E, V);
        static float freqs[512];
        if (h->l3_factor > 0) {
            llama3_rope_freqs(h, n_rot, freqs);
            t = plan_add(&p, "rope_freqs.weight", 1, n_rot / 2, 1);
            t->type = PL_TYPE_F32;
            t->fixed = freqs;
        }
        for (int il = 0; il < h->n_layer; il++) {
            NORM(L("attn_norm.weight"));
            if (ga->phi2) VEC(L("attn_norm.bias"), E, 0.0f);
            if (ga->fused) {
                MAT(L("attn_qkv.weight"), E, Q + 2 * KV);
            } else {
                MAT(L("attn_q.weight"), E, Q);
                MAT(L("attn_k.weight"), E, KV);
                MAT(L("attn_v.weight"), E, KV);
            }
            if (h->qkv_bias || ga->phi2) {
                VEC(L("attn_q.bias"), Q, 0.0f);
                VEC(L("attn_k.bias"), KV, 0.0f);
                VEC(L("attn_v.bias"), KV, 0.0f);
            }
            if (ga->qk_norm) {
                VEC(L("attn_q_norm.weight"), HD, 1.0f);
                VEC(L("attn_k_norm.weight"), HD, 1.0f);
            }
            MAT(L("attn_output.weight"), Q, E);
            if (ga->phi2) VEC(L("attn_output.bias"), E, 0.0f);
            if (ga->post_norms) NORM(L("post_attention_norm.weight"));
            if (!ga->phi2) NORM(L("ffn_norm.weight"));
            if (ga->phi2) {
                MAT(L("ffn_up.weight"), E, F);
                VEC(L("ffn_up.bias"), F, 0.0f);
            } else if (ga->fused) {
                MAT(L("ffn_up.weight"), E, 2 * F);
            } else {
                MAT(L("ffn_gate.weight"), E, F);
                MAT(L("ffn_up.weight"), E, F);
            }
            MAT(L("ffn_down.weight"), F, E);
            if (ga->phi2) VEC(L("ffn_down.bias"), E, 0.0f);
            if (ga->post_norms) NORM(L("post_ffw_norm.weight"));
        }
        NORM("output_norm.weight");
        if (ga->phi2) VEC("output_norm.bias", E, 0.0f);
        if (has_output) MAT("output.weight", E, V);
        if (has_output && ga->phi2) VEC("output.bias", V, 0.0f);
#undef L
#undef MAT
#undef VEC
#undef NORM
        snprintf(label, sizeof label, "%s %s %s", o.preset, an, o.ft->name);
    }
    if (fb.n_tensors) fprintf(stderr, "picolm-gen: %d tensors use a fallback type\n", fb.n_tensors);

    /* ---- layout: header, metadata, tensor table, then aligned data */
    uint64_t data_size = 0, n_params = 0;
    int64_t max_ne0 = 1;
    for (int i = 0; i < p.n; i++) {
        tplan *t = &p.t[i];
        const size_t rs = pl_row_size(t->type, t->ne[0]);
        const pl_type_traits *tr = pl_type_traits_get(t->type);
        if (!rs || !tr || !tr->from_float) die("%s: cannot write type %s", t->name, type_name(t->type));
        if (t->ne[0] > (1 << 24)) die("%s: rows of %lld weights are too long", t->name, (long long)t->ne[0]);
        t->offset = data_size;
        t->nbytes = (uint64_t)rs * (uint64_t)t_rows(t);
        data_size = pad_to(data_size + t->nbytes, ALIGNMENT);
        n_params += (uint64_t)t->ne[0] * (uint64_t)t_rows(t);
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
    }
    bbuf hdr;
    memset(&hdr, 0, sizeof hdr);
    bb_put(&hdr, "GGUF", 4);
    bb_u32(&hdr, 3);
    bb_u64(&hdr, (uint64_t)p.n);
    bb_u64(&hdr, w.n_kv);
    bb_put(&hdr, w.b.p, w.b.n);
    free(w.b.p);
    for (int i = 0; i < p.n; i++) {
        const tplan *t = &p.t[i];
        bb_str(&hdr, t->name);
        bb_u32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_u64(&hdr, (uint64_t)t->ne[d]);
        bb_u32(&hdr, t->type);
        bb_u64(&hdr, t->offset);
    }
    static const uint8_t zeros[ALIGNMENT];
    bb_put(&hdr, zeros, (size_t)(pad_to(hdr.n, ALIGNMENT) - hdr.n));
    const uint64_t total = hdr.n + data_size;
    fprintf(stderr, "picolm-gen: %s: %d tensors, %.3f B weights, %.1f MiB -> %s (%d threads)\n", label, p.n,
            (double)n_params / 1e9, (double)total / 1048576.0, o.out, o.n_threads);

    /* ---- stream the data */
    if (strlen(o.out) + 5 > sizeof g_tmp_path) die("output path too long");
    snprintf(g_tmp_path, sizeof g_tmp_path, "%s.tmp", o.out);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *f = fopen(g_tmp_path, "wb");
    if (!f) {
        g_tmp_path[0] = 0;
        die("cannot create %s: %s", o.out, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (fwrite(hdr.p, 1, hdr.n, f) != hdr.n) die("write error on %s: %s", g_tmp_path, strerror(errno));
    free(hdr.p);

    chunk_job job;
    memset(&job, 0, sizeof job);
    job.nth = o.n_threads;
    for (int i = 0; i < job.nth; i++)
        if (!(job.scratch[i] = malloc((size_t)max_ne0 * sizeof(float)))) die("out of memory");
    uint8_t *outbuf = NULL, *srcbuf = NULL;
    size_t outcap = 0, srccap = 0;
    const int tty = isatty(fileno(stderr));
    uint64_t written = 0;
    double last = 0;
    for (int i = 0; i < p.n; i++) {
        const tplan *t = &p.t[i];
        const int64_t rows = t_rows(t), ne0 = t->ne[0];
        const int64_t per = ne0 >= CHUNK_WEIGHTS ? 1 : CHUNK_WEIGHTS / ne0;
        job.t = t;
        job.seed = o.seed;
        job.name_hash = fnv1a(t->name);
        job.out_row = pl_row_size(t->type, ne0);
        job.src_row = t->src ? pl_row_size(t->src->type, ne0) : 0;
        if (t->src && (!job.src_row || job.src_row * (uint64_t)rows != t->src->nbytes))
            die("%s: unexpected size of %s", o.from, t->name);
        const size_t need_out = job.out_row * (size_t)(per < rows ? per : rows);
        const size_t need_src = job.src_row * (size_t)(per < rows ? per : rows);
        if (need_out > outcap && !(outbuf = realloc(outbuf, outcap = need_out))) die("out of memory");
        if (need_src > srccap && !(srcbuf = realloc(srcbuf, srccap = need_src))) die("out of memory");
        for (int64_t r0 = 0; r0 < rows; r0 += per) {
            const int64_t nr = rows - r0 < per ? rows - r0 : per;
            job.r0 = r0;
            job.nr = nr;
            job.out = outbuf;
            job.src = srcbuf;
            if (t->src) {
                const size_t len = job.src_row * (size_t)nr;
                const off_t at = (off_t)(in.g.data_offset + t->src->offset + job.src_row * (uint64_t)r0);
                for (size_t got = 0; got < len;) {
                    const ssize_t k = pread(in.fd, srcbuf + got, len - got, at + (off_t)got);
                    if (k <= 0) die("read error on %s", o.from);
                    got += (size_t)k;
                }
            }
            run_chunk(&job);
            const size_t n = job.out_row * (size_t)nr;
            if (fwrite(outbuf, 1, n, f) != n) die("write error on %s: %s", g_tmp_path, strerror(errno));
            written += n;
            const double tn = now_s();
            if (tty && tn - last > 0.25) {
                last = tn;
                fprintf(stderr, "\r%5.1f%%  %7.1f / %.1f MiB  %5.1f s  %-32s", 100.0 * (double)written / (double)data_size,
                        (double)written / 1048576.0, (double)data_size / 1048576.0, tn - t0, t->name);
            }
        }
        const uint64_t padn = pad_to(t->nbytes, ALIGNMENT) - t->nbytes;
        if (padn && fwrite(zeros, 1, (size_t)padn, f) != padn) die("write error on %s", g_tmp_path);
    }
    if (tty) fprintf(stderr, "\r%-90s\r", "");
    if (fflush(f) != 0 || ferror(f)) die("write error on %s: %s", g_tmp_path, strerror(errno));
    if (fclose(f) != 0) die("write error on %s: %s", g_tmp_path, strerror(errno));
    if (rename(g_tmp_path, o.out) != 0) die("cannot rename %s to %s: %s", g_tmp_path, o.out, strerror(errno));
    g_tmp_path[0] = 0;

    for (int i = 0; i < job.nth; i++) free(job.scratch[i]);
    free(outbuf);
    free(srcbuf);
    free(p.t);
    if (have_in) infile_close(&in);
    fprintf(stderr, "picolm-gen: wrote %s: %.1f MiB in %.1f s\n", o.out, (double)total / 1048576.0, now_s() - t0);
    return 0;
}
