#!/bin/sh
# mca.sh - Arm kernel throughput without Arm hardware: llvm-mca's estimate,
# in cycles per 256 weights per column, of each matmul kernel's main loop
# for Cortex-A53, A72 and A76, picolm's next to llama.cpp's. Both are
# compiled here by clang-14 -O2 the same way (-march as the Makefile's Arm
# levels, -mtune per core); one iteration of the loop that covers a block
# or super-block is cut from the assembly, its inner loops written out by
# their trip counts, and fed to llvm-mca-14. A model, not a measurement:
# no caches, no memory bandwidth, and a branch inside the loop counts as
# taken. llama.cpp's source is read, never copied: LLAMA_CPP = a llama.cpp
# or ggml checkout or bare git directory (default: a fetched snapshot in
# /work/.mirror); without one its columns say n/a.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=clang-14 MCA=llvm-mca-14
if ! command -v $CC >/dev/null || ! command -v $MCA >/dev/null; then
    echo "bench-mca needs clang-14 and llvm-mca-14: apt-get install clang llvm"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
CPUS="cortex-a53 cortex-a72 cortex-a76"

# llama.cpp's ggml, its files exported to $T/g (llama.cpp keeps it under ggml/).
G="" REV=n/a
for d in ${LLAMA_CPP:-/work/.mirror/ggml-org+llama.cpp/repo /work/.mirror/ggml-org+ggml/repo}; do
    for p in ggml/ ""; do
        [ -z "$G" ] || break
        if [ -f "$d/${p}src/ggml-cpu/arch/arm/quants.c" ]; then
            G=$d/${p%/} REV=$(git -C "$d" log -1 --format=%h 2>/dev/null || echo "?")
        elif git --git-dir="$d" cat-file -e "HEAD:${p}src/ggml-cpu/arch/arm/quants.c" 2>/dev/null; then
            mkdir -p "$T/g" && G=$T/g/${p%/} REV="$(basename "$(dirname "$d")") $(git --git-dir="$d" log -1 --format=%h)"
            git --git-dir="$d" archive HEAD "${p}include" "${p}src" | tar -x -C "$T/g" || G=""
        fi
    done
done
# repack.cpp is C++; Debian's cross gcc ships no aarch64 libstdc++ headers,
# so the host's bits/c++config.h stands in (LP64 both, only the kernels matter).
CXXINC=$(ls -d /usr/include/*-linux-gnu/c++/* 2>/dev/null | tail -n 1)

# picolm: each tile of src/kernels/arm_neon.c in a function of its own.
for t in Q4_K Q6_K; do for c in 1 4; do
    echo "void mca_kq_${t}_$c(const uint8_t *r, const uint8_t *x, size_t xs, int n, float *y, size_t ys) { kq_tile(PL_TYPE_$t, $c, r, x, xs, n, y, ys); }"
done; done >"$T/tiles.h"
for t in Q8_0 Q4_0; do for c in 1 4; do
    echo "void mca_q0_${t}_$c(const uint8_t *w, size_t rb, const uint8_t *x, size_t xs, int n, float *y, size_t ys) { q0_tile(PL_TYPE_$t, $c, w, rb, 4, x, xs, n, y, ys); }"
done; done >>"$T/tiles.h"
printf '#include "kernels/arm_neon.c"\n#include "tiles.h"\n' >"$T/neon.c"
{
    printf '#include "kernels/arm_dotprod.c"\n#include "tiles.h"\n'
    for t in Q4_K Q6_K; do
        echo "void mca_k8c_$t(const k8_t *w, const block_q8_K *const *x, float32x4_t *a, float32x4_t *m) { k8_cols(PL_TYPE_$t, 4, w, 0, x, a, m); }"
        echo "void mca_k8f_$t(const uint8_t *b, size_t rb, k8_t *o) { k8_fill(PL_TYPE_$t, b, rb, o); }"
    done
} >"$T/dotprod.c"

# One iteration of the first loop at depth D of function F with 16
# instructions or more (not a set-up loop), from clang's loop comments;
# D=0: the first block that branches to itself, as in inline asm. Inner
# loops are repeated TRIPS times by depth below D ("a,b": depth D+1 a
# times, D+2 b times; "a/b": the first such loop a, the next b). "?" if
# the nest is not so.
cat >"$T/loop.awk" <<'AWK'
function trace(h, lvl,   i, c, k, n, o, s, seen, alt) {
    n = split(tr[lvl + 1], alt, "/")
    for (i = 1; i <= nb; i++) {
        for (c = lp[i]; c != "" && c != h && par[c] != h; ) c = par[c]
        if (c == h) s = s body[i]
        else if (c != "" && !(c in seen)) {
            seen[c] = 1
            if (lvl >= ntr || ++o > n && n > 1) bad = 1
            for (k = 0; k < alt[n > 1 ? o : 1]; k++) s = s trace(c, lvl + 1)
        }
    }
    return s
}
BEGIN { ntr = split(TRIPS, tr, ",") }
$0 ~ "^" F ":" { inf = 1; next }
inf && /^\.Lfunc_end/ { inf = 0 }
!inf { next }
/^[.A-Za-z0-9_]+:/ || /^\/\/ %bb\./ { lab[++nb] = $1 == "//" ? $2 : $1; sub(/:.*/, "", lab[nb]); last = "" }
/Parent Loop/ { last = $0; sub(/.*Parent Loop /, "", last); sub(/ .*/, "", last) }
/This (Inner )?Loop Header/ { x = "BB" substr(lab[nb], 5); lp[nb] = x; dep[x] = $NF; sub(/.*=/, "", dep[x]); par[x] = last }
/in Loop: Header=/ { x = $0; sub(/.*Header=/, "", x); sub(/ .*/, "", x); lp[nb] = x }
/^[ \t]+[a-z]/ && nb { body[nb] = body[nb] $0 "\n"; if ($NF == lab[nb]) self[nb] = 1 }
END {
    if (D == 0) { for (i = 1; i <= nb; i++) if (self[i]) { printf "%s", body[i]; exit } print "?"; exit }
    for (i = 1; i <= nb; i++) { # the first loop of 16 instructions or more
        if (lp[i] == "" || dep[lp[i]] != D || (lp[i] in done)) continue
        done[lp[i]] = 1; bad = 0; s = trace(lp[i], 0)
        if (split(s, junk, "\n") > 16) { if (bad) print "?"; else printf "%s", s; exit }
    }
    print "?"
}
AWK

# Cycles per 256 weights per column: FILE FUNCTION DEPTH TRIPS COVER CPU,
# COVER = 256-weight columns one iteration computes.
cyc() {
    [ -s "$1" ] || { echo n/a; return; }
    awk -v F="$2" -v D="$3" -v TRIPS="${4#-}" -f "$T/loop.awk" "$1" >"$T/loop.s"
    if [ ! -s "$T/loop.s" ] || grep -q '^?' "$T/loop.s"; then echo "?"; return; fi
    $MCA -mtriple=aarch64 -mcpu="$6" -iterations=100 "$T/loop.s" 2>/dev/null |
        awk -v c="$5" '/^Iterations:/ { n = $2 } /^Total Cycles:/ { printf "%.0f", $3 / n / c; ok = 1 } END { if (!ok) print "?" }'
}

# The kernels: type, mode, picolm's tile and its cover, then for the
# neon and the dotprod level llama.cpp's function, file (q: arch/arm/quants.c,
# r: arch/arm/repack.cpp), depth, trips, cover.
#  picolm: kq_tile takes one super-block of one row for C columns (cover
#   C); q0_tile one 32-weight block of 4 rows for C columns (cover C/2);
#   dotprod prefill of Q4_K/Q6_K is mm_k8's: k8_cols's sub-block loop (4
#   rows x 4 columns) plus k8_fill's share (32 columns a fill).
#   Its UNROLL loops are written out under clang as under gcc (no inner
#   loops to repeat).
#  llama.cpp: ggml_vec_dot_* is one row by one column, also for prefill at
#   the neon level (no repacked kernels without dotprod): Q4_K/Q6_K one
#   super-block an iteration, inner loops j < 4 / j < 2 where not unrolled;
#   Q8_0/Q4_0 two blocks (cover 1/4). Repacked dotprod prefill (what
#   ggml_repack_get_optimal_repack_type picks without i8mm): q4_K_8x4 and
#   q6_K_8x4 one super-block of 8 rows x 4 columns (cover 32; sb < 4,
#   k < 8 and half < 2, sb < 4, k < 4), q8_0_4x4 one block of 4 x 4 (2),
#   q4_0_4x4's inline asm "Block loop" one block of 4 rows x 16 columns (8).
KERNELS="
Q4_K gen kq_Q4_K_1 1    ggml_vec_dot_q4_K_q8_K q 1 4 1    ggml_vec_dot_q4_K_q8_K  q 1 4     1
Q4_K pre kq_Q4_K_4 4    ggml_vec_dot_q4_K_q8_K q 1 4 1    ggml_gemm_q4_K_8x4_q8_K r 3 4,8   32
Q6_K gen kq_Q6_K_1 1    ggml_vec_dot_q6_K_q8_K q 1 2 1    ggml_vec_dot_q6_K_q8_K  q 1 2     1
Q6_K pre kq_Q6_K_4 4    ggml_vec_dot_q6_K_q8_K q 1 2 1    ggml_gemm_q6_K_8x4_q8_K r 3 2,4,4 32
Q8_0 gen q0_Q8_0_1 0.5  ggml_vec_dot_q8_0_q8_0 q 1 - 0.25 ggml_vec_dot_q8_0_q8_0  q 1 -     0.25
Q8_0 pre q0_Q8_0_4 2    ggml_vec_dot_q8_0_q8_0 q 1 - 0.25 ggml_gemm_q8_0_4x4_q8_0 r 3 -     2
Q4_0 gen q0_Q4_0_1 0.5  ggml_vec_dot_q4_0_q8_0 q 1 - 0.25 ggml_vec_dot_q4_0_q8_0  q 1 -     0.25
Q4_0 pre q0_Q4_0_4 2    ggml_vec_dot_q4_0_q8_0 q 1 - 0.25 ggml_gemm_q4_0_4x4_q8_0 r 0 -     8"

# Assembly per level and core: neon as the Makefile builds arm_neon.c
# (Armv8.0), dotprod as arm_dotprod.c (only the A76 of the three has it).
for lv in neon dotprod; do
    for cpu in $CPUS; do
        [ $lv = neon ] && ARCHF=-march=armv8-a || ARCHF=-march=armv8.2-a+dotprod
        [ $lv = dotprod ] && [ $cpu != cortex-a76 ] && continue
        F="--target=aarch64-linux-gnu -O2 $ARCHF -mtune=$cpu -S"
        $CC $F -std=c11 -Iinclude -Isrc -I"$T" -D_POSIX_C_SOURCE=200809L "$T/$lv.c" -o "$T/p-$lv-$cpu.s" || exit 1
        [ -n "$G" ] || continue
        GI="-I$G/include -I$G/src -I$G/src/ggml-cpu"
        $CC $F $GI "$G/src/ggml-cpu/arch/arm/quants.c" -o "$T/q-$lv-$cpu.s" 2>/dev/null || rm -f "$T/q-$lv-$cpu.s"
        [ $lv = neon ] || $CC $F -x c++ -std=c++17 ${CXXINC:+-isystem "$CXXINC"} $GI \
            "$G/src/ggml-cpu/arch/arm/repack.cpp" -o "$T/r-$lv-$cpu.s" 2>/dev/null || rm -f "$T/r-$lv-$cpu.s"
    done
done

echo "llvm-mca cycles per 256 weights per column, one loop iteration in steady state (lower is faster)"
echo "$($MCA --version | sed -n 's/.*LLVM version \([0-9.]*\).*/LLVM \1/p'), clang-14 -O2; llama.cpp = $([ -n "$G" ] && echo "ggml-cpu of $REV" || echo "n/a (no source: LLAMA_CPP=...)")"
echo "LLVM 14 models the A72 and the A76 as the A57 (its columns differ by -mtune only); dotprod: the A76 alone"
echo "x = llama.cpp cycles / picolm cycles (above 1: picolm faster); gen = one column, pre = prefill tile"
printf '%-17s' "kernel"
for cpu in $CPUS; do printf '| %-21s' "$cpu"; done
printf '\n%-17s' ""
for cpu in $CPUS; do printf '| %6s %6s %6s ' picolm llama x; done
echo
for lv in neon dotprod; do
    echo "$KERNELS" | while read -r t m pf pc n1 f1 d1 r1 c1 n2 f2 d2 r2 c2; do
        [ -n "$t" ] || continue
        [ $lv = neon ] && set -- "$n1" "$f1" "$d1" "$r1" "$c1" || set -- "$n2" "$f2" "$d2" "$r2" "$c2"
        printf '%-17s' "$t $m $lv"
        for cpu in $CPUS; do
            if [ ! -f "$T/p-$lv-$cpu.s" ]; then printf '| %6s %6s %6s ' - - -; continue; fi
            if [ $lv = dotprod ] && [ $m = pre ] && [ $t = Q4_K -o $t = Q6_K ]; then
                # mm_k8: a sub-block (32 or 16 weights) of 4 rows x 4
                # columns (cover 2 or 1), plus the fill of 4 rows'
                # super-block shared by 32 columns
                [ $t = Q4_K ] && k=2 jt=2 || k=1 jt=4
                a=$(awk -v c="$(cyc "$T/p-$lv-$cpu.s" "mca_k8c_$t" 1 - "$k" $cpu)" \
                    -v f="$(cyc "$T/p-$lv-$cpu.s" "mca_k8f_$t" 1 "4/16/$jt" 128 $cpu)" \
                    'BEGIN { if (c + 0 > 0 && f + 0 > 0) printf "%.0f", c + f; else print "?" }')
            else
                a=$(cyc "$T/p-$lv-$cpu.s" "mca_$pf" 1 - "$pc" $cpu)
            fi
            b=n/a
            [ -z "$G" ] || b=$(cyc "$T/$2-$lv-$cpu.s" "$1" "$3" "$4" "$5" $cpu)
            x=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", b / a; else print "-" }')
            printf '| %6s %6s %6s ' "$a" "$b" "$x"
        done
        echo
    done
done
