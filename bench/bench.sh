#!/bin/sh
# bench.sh - end-to-end benchmark on a TinyLlama-1.1B-shaped Q4_K_M model
# with random weights (generated once into models/, git-ignored): prefill
# tok/s for 128- and 512-token prompts, generation tok/s over 128 tokens,
# time to first token and peak RSS, for 1 and 2 threads; and the weight
# bytes streamed per second divided by the memory-read bandwidth measured
# in the same run. Usage: make bench [BENCH_MODEL=path] [BENCH_THREADS="1 2"]
set -eu
BIN=${PICOLM:-build/picolm}
GEN=${PICOLM_GEN:-build/picolm-gen}
MODEL=${BENCH_MODEL:-models/tinyllama-1.1b-Q4_K_M.gguf}
THREADS=${BENCH_THREADS:-"1 2"}
MEMBW=${MEMBW:-build/membw}

if [ ! -f "$MODEL" ]; then
    mkdir -p "$(dirname "$MODEL")"
    echo "generating $MODEL (random weights, once)" >&2
    "$GEN" "$MODEL" --preset tinyllama-1.1b --type Q4_K_M
fi
# warm the page cache so the first run is not a disk benchmark
cat "$MODEL" >/dev/null

ids() { # N random-ish token ids in [3, 32000)
    awk -v n="$1" 'BEGIN { srand(1); printf "1"; for (i = 1; i < n; i++) printf " %d", 3 + int(rand() * 31990); print "" }'
}
P128=$(ids 128)
P512=$(ids 512)
stat() { # FIELD from the stats lines in file $1
    sed -n "$2" "$1"
}

WBYTES=$(wc -c <"$MODEL")
printf '%s (%s MB), kernels %s\n' "$MODEL" $((WBYTES / 1000000)) "$("$BIN" --version | sed 's/.*kernels: //; s/)//')"
printf '%-8s %14s %14s %14s %10s %10s %12s\n' threads "prefill128" "prefill512" "generation" "TTFT128" "peakRSS" "BW-use"
T=$(mktemp)
for j in $THREADS; do
    "$BIN" "$MODEL" --prompt-ids "$P128" -n 0 -j "$j" -c 1024 2>"$T" >/dev/null
    pf128=$(sed -n 's/.*prompt [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
    ttft=$(sed -n 's/.*first token \([0-9]*\) ms.*/\1/p' "$T")
    "$BIN" "$MODEL" --prompt-ids "$P512" -n 0 -j "$j" -c 1024 2>"$T" >/dev/null
    pf512=$(sed -n 's/.*prompt [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
    "$BIN" "$MODEL" --prompt-ids "1" -n 129 -t 0 -j "$j" -c 1024 2>"$T" >/dev/null
    gen=$(sed -n 's/.*generated [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p' "$T")
    rss=$(sed -n 's/.*peak RSS \([0-9.]*\) MB.*/\1/p' "$T")
    bw=$("$MEMBW" "$j")
    use=$(awk -v g="$gen" -v w="$WBYTES" -v b="$bw" 'BEGIN { printf "%.0f%% of %.1f GB/s", 100 * g * w / 1e9 / b, b }')
    printf '%-8s %10s t/s %10s t/s %10s t/s %7s ms %7s MB %s\n' "$j" "$pf128" "$pf512" "$gen" "$ttft" "$rss" "$use"
done
rm -f "$T"
