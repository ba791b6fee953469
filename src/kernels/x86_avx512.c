/* x86_avx512.c - the "avx512" level: x86_avx2.c's kernels built again with
 * AVX-512 F/BW/VL and VNNI, whose prefill tiles (Q4_K, Q6_K, IQ4_XS) sum
 * byte products with vpdpbusd (on 256-bit vectors) where the avx2 level
 * needs maddubs, 16-bit adds and a madd: the same integers, so the results
 * are bit for bit the avx2 level's. The Makefile compiles this file with
 * the AVX-512 flags; cpu.c selects it only when the CPU and OS support them
 * and a check at start-up gives the avx2 level's results (see cpu.c). The
 * tests also build it with PL_VNNI_EMULATE (vpdpbusd in AVX2) so that its
 * code runs on CPUs without VNNI. The same object holds the avx512-wide
 * level (x86_avx2.c's 512-bit prefill tiles, pl_kernels_avx512w) and the
 * start-up timing that picks between the two (pl_avx512_full_width). */
#define PL_VNNI 1
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wunused-function" /* the avx2 level's own, left out */
#endif
#include "x86_avx2.c"
