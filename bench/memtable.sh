#!/bin/sh
# memtable.sh - the README's memory table, from the engine's own figures:
# runtime state and KV cache for each context length and KV type on the
# TinyLlama-shaped model (generated once into models/).
set -eu
BIN=${PICOLM:-build/picolm}
MODEL=${BENCH_MODEL:-models/tinyllama-1.1b-Q4_K_M.gguf}
[ -f "$MODEL" ] || ${PICOLM_GEN:-build/picolm-gen} "$MODEL" --preset tinyllama-1.1b --type Q4_K_M
echo "| context | KV type | KV cache | runtime state | total private |"
echo "| --- | --- | --- | --- | --- |"
for c in 512 1024 2048; do
    for kv in f16 q8; do
        line=$("$BIN" "$MODEL" -p "Hello" -n 1 -c "$c" --kv "$kv" -t 0 2>&1 >/dev/null | grep "memory:")
        st=$(echo "$line" | sed 's/.*state \([0-9.]*\) MB.*/\1/')
        kvb=$(echo "$line" | sed 's/.*KV cache \([0-9.]*\) MB.*/\1/')
        printf '| %s | %s | %s MB (%.1f MiB) | %s MB | %.1f MB |\n' "$c" "$kv" "$kvb" \
            "$(awk -v k="$kvb" 'BEGIN { print k * 1e6 / 1048576 }')" "$st" "$(awk -v a="$st" -v b="$kvb" 'BEGIN { print a + b }')"
    done
done
