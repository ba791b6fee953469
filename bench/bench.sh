#!/bin/sh
# bench.sh - end-to-end benchmark on random-weight Q4_K_M models of real
# shapes (generated once into models/, git-ignored, by build/picolm-gen):
# TinyLlama 1.1B, Qwen3 0.6B and Llama 3.2 1B. For each: prefill tok/s for
# 128- and 512-token prompts, generation tok/s over 128 tokens, time to
# first token and peak RSS, for 1 and 2 threads; and the weight bytes
# streamed per second divided by the memory-read bandwidth measured in the
# same run. The prompts are the same ids for every model (all below 32000:
# ordinary tokens in each vocabulary; the TinyLlama ids are those of the
# earlier single-model script).
# Usage: make bench [BENCH_MODELS="tinyllama-1.1b qwen3-0.6b llama-3.2-1b"]
#        [BENCH_MODEL=path (one file instead)] [BENCH_THREADS="1 2"] [BENCH_ROUNDS=1]
# BENCH_MODELS takes picolm-gen preset names (picolm-gen --help).
# IK_BENCH=path to ik_llama.cpp's llama-bench and/or LLAMA_BENCH=path to
# mainline llama.cpp's: each runs on the same file in the same run, for the
# same threads (-p 128,512 -n 128 -r 2; ik_llama.cpp also with -rtr 1, its
# repacked weights), and the table gains a row per engine and thread count
# and the ratios picolm / each engine. A failing one is reported and skipped.
# BENCH_ROUNDS=N repeats the whole set N times, each engine in turn within
# a round, and keeps each engine's best figure (on a shared machine whose
# neighbours come and go, one round can be 20-40% off).
set -eu
BIN=${PICOLM:-build/picolm}
GEN=${PICOLM_GEN:-build/picolm-gen}
MODELS=${BENCH_MODELS:-"tinyllama-1.1b qwen3-0.6b llama-3.2-1b"}
THREADS=${BENCH_THREADS:-"1 2"}
ROUNDS=${BENCH_ROUNDS:-1}
case $ROUNDS in '' | *[!0-9]* | 0) echo "bench: BENCH_ROUNDS must be a positive number" >&2; exit 2 ;; esac
MEMBW=${MEMBW:-build/membw}

ids() { # N random-ish token ids in [3, $2 - 7)
    awk -v n="$1" -v v="$2" 'BEGIN { srand(1); printf "1"; for (i = 1; i < n; i++) printf " %d", 3 + int(rand() * (v - 10)); print "" }'
}
KERNELS=$("$BIN" --version | sed 's/.*kernels: //; s/)//')
T=$(mktemp)
E=$(mktemp) # the other engines' rows: label|threads|pp128|pp512|tg128
P=$(mktemp) # picolm's: threads|pf128|pf512|gen
R=$(mktemp) # picolm's per round: threads|pf128|pf512|gen|ttft|rss|bandwidth|tokens
trap 'rm -f "$T" "$E" "$P" "$R"' EXIT
# Without another engine the table stays as it was: a thread count per row.
W=8
LABEL=threads
if [ -n "${IK_BENCH:-}${LLAMA_BENCH:-}" ]; then W=28; LABEL="engine, threads"; fi

run() { # picolm ARGS...: its statistics in $T; a failure stops the benchmark with picolm's error
    "$BIN" "$@" 2>"$T" >/dev/null || { echo "bench: picolm failed: $(tail -n 1 "$T")" >&2; exit 1; }
}

# other LABEL FILE BIN [FLAGS...]: llama-bench's averages appended to $E.
# Its CSV quotes every value and one value ("-1,0") holds a comma, so the
# values split on '","'; the header is bare names.
other() {
    label=$1 file=$2
    shift 2
    rc=0
    "$@" -m "$file" -t "$(echo $THREADS | tr ' ' ,)" -p 128,512 -n 128 -r 2 -o csv >"$T" 2>"$T.err" || rc=$?
    msg=$(tail -n 1 "$T.err")
    [ $rc = 0 ] || echo "$label failed (exit $rc): ${msg:-no message}"
    rm -f "$T.err"
    [ $rc = 0 ] || return 0
    awk -v label="$label" '
        NR == 1 { n = split($0, h, ","); for (i = 1; i <= n; i++) c[h[i]] = i; next }
        { sub(/^"/, ""); sub(/"$/, ""); split($0, f, "\",\"")
          t = f[c["n_threads"]]; v = sprintf("%.1f", f[c["avg_ts"]])
          if (!(t in seen)) { seen[t] = 1; order[++k] = t }
          if (f[c["n_gen"]] == 0) pp[t, f[c["n_prompt"]]] = v; else tg[t] = v }
        END { for (i = 1; i <= k; i++) { t = order[i]; print label "|" t "|" pp[t, 128] "|" pp[t, 512] "|" tg[t] } }' "$T" >>"$E"
}

# bench_one FILE: the table for one model
bench_one() {
    model=$1
    # warm the page cache so the first run is not a disk benchmark
    cat "$model" >/dev/null
    wbytes=$(wc -c <"$model")
    # the ids stay below 32000, or 4096 / 512 for the small presets' vocabularies
    for vmax in 32000 4096 512; do
        "$BIN" "$model" --prompt-ids "$((vmax - 1))" -n 0 -j 1 -q >/dev/null 2>&1 && break
    done
    P128=$(ids 128 "$vmax")
    P512=$(ids 512 "$vmax")
    printf '%s (%s MB), kernels %s\n' "$model" $((wbytes / 1000000)) "$KERNELS"
    : >"$E"
    : >"$P"
    : >"$R"
    round=0
    while [ $round -lt "$ROUNDS" ]; do
        round=$((round + 1))
        [ -z "${IK_BENCH:-}" ] || other ik_llama "$model" "$IK_BENCH"
        [ -z "${IK_BENCH:-}" ] || other "ik_llama -rtr" "$model" "$IK_BENCH" -rtr 1
        [ -z "${LLAMA_BENCH:-}" ] || other llama.cpp "$model" "$LLAMA_BENCH"
        for j in $THREADS; do
            run "$model" --prompt-ids "$P128" -n 0 -j "$j" -c 1024
            pf128=$(sed -n 's/.*prompt [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
            ttft=$(sed -n 's/.*first token \([0-9]*\) ms.*/\1/p' "$T")
            run "$model" --prompt-ids "$P512" -n 0 -j "$j" -c 1024
            pf512=$(sed -n 's/.*prompt [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
            run "$model" --prompt-ids "1" -n 129 -t 0 -j "$j" -c 1024
            gen=$(sed -n 's/.*generated [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
            ngen=$(sed -n 's/.*generated \([0-9]*\) tokens.*/\1/p' "$T")
            rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' "$T")
            bw=$("$MEMBW" "$j")
            echo "$j|$pf128|$pf512|$gen|$ttft|$rss|$bw|${ngen:-0}" >>"$R"
        done
    done
    # over the rounds: each engine's best figure (a shared machine's noise
    # only ever slows a run down), the other engines' as picolm's
    awk -F'|' '{ k = $1 "|" $2; if (!(k in n)) { n[k] = 1; o[++m] = k }
                 for (i = 3; i <= 5; i++) if ($i + 0 > b[k, i] + 0) b[k, i] = $i }
        END { for (x = 1; x <= m; x++) print o[x] "|" b[o[x], 3] "|" b[o[x], 4] "|" b[o[x], 5] }' "$E" >"$T"
    mv "$T" "$E"
    printf "%-${W}s %14s %14s %14s %10s %10s %12s\n" "$LABEL" "prefill128" "prefill512" "generation" "TTFT128" "peakRSS" "BW-use"
    for j in $THREADS; do
        # picolm's best prefill and generation, their round's bandwidth, the least TTFT
        awk -F'|' -v j="$j" '$1 == j {
            if ($2 + 0 > p1) p1 = $2; if ($3 + 0 > p5) p5 = $3
            if (ttft == "" || $5 + 0 < ttft + 0) ttft = $5; if ($6 + 0 > rss) rss = $6
            if ($4 + 0 > g || gl == "") { g = $4; gl = $0 } }
            END { split(gl, f); print p1 "|" p5 "|" f[4] "|" ttft "|" rss "|" f[7] "|" f[8] }' "$R" >"$T"
        IFS='|' read -r pf128 pf512 gen ttft rss bw ngen <"$T"
        use=$(awk -v g="$gen" -v w="$wbytes" -v b="$bw" 'BEGIN { printf "%.0f%% of %.1f GB/s", 100 * g * w / 1e9 / b, b }')
        # a random model may emit its end-of-generation token early: say so
        [ "${ngen:-0}" -ge 129 ] || use="$use (over ${ngen:-0} tokens)"
        label=$j
        [ $W = 8 ] || label="picolm -t $j"
        printf "%-${W}s %10s t/s %10s t/s %10s t/s %7s ms %7s MB %s\n" "$label" "$pf128" "$pf512" "$gen" "$ttft" "$rss" "$use"
        echo "$j|$pf128|$pf512|$gen" >>"$P"
        awk -F'|' -v j="$j" -v w="$W" '$2 == j {
            printf "%-" w "s %10s t/s %10s t/s %10s t/s %10s %10s\n", $1 " -t " j, $3, $4, $5, "-", "-" }' "$E"
    done
    # picolm / each engine, per thread count (a missing figure gives "-")
    awk -F'|' -v w="$W" 'function r(a, b) { return b > 0 ? sprintf("%.2fx", a / b) : "-" }
        NR == FNR { p[++np] = $0; next }
        { e[++ne] = $0 }
        END { for (i = 1; i <= np; i++) for (k = 1; k <= ne; k++) {
            split(p[i], a); split(e[k], b)
            if (a[1] == b[2]) printf "%-" w "s %14s %14s %14s\n", "picolm / " b[1] " -t " b[2], r(a[2], b[3]), r(a[3], b[4]), r(a[4], b[5]) } }' "$P" "$E"
}

if [ -n "${BENCH_MODEL:-}" ]; then
    bench_one "$BENCH_MODEL"
    exit 0
fi
first=1
for preset in $MODELS; do
    model=models/$preset-Q4_K_M.gguf
    if [ ! -f "$model" ]; then
        mkdir -p models
        echo "generating $model (random weights, once)" >&2
        "$GEN" "$model" --preset "$preset" --type Q4_K_M
    fi
    [ $first = 1 ] || echo
    first=0
    bench_one "$model"
done
