#!/bin/sh
# server.sh - make bench-server: picolm-server on the TinyLlama-1.1B-shaped
# Q4_K_M model (generated once by bench.sh's rule) with 8 slots, then
# bench/server.mjs: generation tok/s (the streams' decode rates summed),
# wall tok/s including prefill and time to first token with 1, 2, 4 and 8
# concurrent streams, and the prefill saved by prefix reuse. A benchmark,
# never a test. BENCH_MODEL=path, BENCH_THREADS=2, BENCH_STREAMS="1 2 4 8".
set -eu
SRV=${PICOLM_SERVER:-build/picolm-server}
GEN=${PICOLM_GEN:-build/picolm-gen}
MODEL=${BENCH_MODEL:-models/tinyllama-1.1b-Q4_K_M.gguf}
if [ ! -f "$MODEL" ]; then
    mkdir -p "$(dirname "$MODEL")"
    echo "generating $MODEL (random weights, once)" >&2
    "$GEN" "$MODEL" --preset tinyllama-1.1b --type Q4_K_M
fi
cat "$MODEL" >/dev/null
T=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null; rm -rf "$T"' EXIT
"$SRV" "$MODEL" --port 0 --parallel 8 -c 1024 -j "${BENCH_THREADS:-2}" >"$T/log" 2>&1 &
PID=$!
port=
for _ in $(seq 1 300); do
    port=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$T/log")
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { cat "$T/log"; exit 1; }
head -n 1 "$T/log"
node bench/server.mjs "http://127.0.0.1:$port/v1" "$(basename "$MODEL" .gguf)"
