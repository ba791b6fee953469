#!/bin/sh
# gen.sh - build/picolm-gen against the loader: a tiny model of every
# architecture picolm runs and of every preset (real vocabulary sizes and
# layouts, shrunk bodies) must load and generate with build/picolm; the
# synthesized BPE vocabularies must tokenize English into word-sized pieces;
# the weights must not depend on the thread count; --vocab must carry a real
# SentencePiece or byte-level BPE vocabulary (merges included) when the
# reference data is there. A few seconds in all.
# Usage: PICOLM=build/picolm PICOLM_GEN=build/picolm-gen sh tests/gen.sh
set -u
BIN=${PICOLM:-build/picolm}
GEN=${PICOLM_GEN:-$(dirname "$BIN")/picolm-gen}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
if [ ! -x "$GEN" ]; then
    echo "gen: skipped: no $GEN (picolm-gen is not built for this target)"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL gen: $*" >&2; }

# a small body: 2 layers, 64 wide, 4 heads (2 KV) of 16, FFN 128
SMALL="--n-layer 2 --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 16 --n-ff 128 -j 1"

# gen NAME ARGS...: generate $T/NAME.gguf, then 4 greedy tokens from ids
gen() {
    g_name=$1; shift
    if ! "$GEN" "$T/$g_name.gguf" "$@" >/dev/null 2>"$T/gen.err"; then
        bad "picolm-gen $*: $(tail -1 "$T/gen.err")"
        return 1
    fi
    if ! "$BIN" "$T/$g_name.gguf" --prompt-ids "1 2 3" -n 4 -t 0 -j 1 -q >"$T/out" 2>"$T/err"; then
        bad "$g_name: picolm exited $? ($(head -c 300 "$T/err"))"
        return 1
    fi
    ok
}

# every architecture, with the SentencePiece vocabulary
for arch in llama qwen2 qwen3 gemma gemma2 gemma3 phi2 phi3 smollm3; do
    gen "arch-$arch" --arch "$arch" $SMALL
done
# K-quants and the Q4_K_M mix on rows of 256 (no fallback types)
gen q4km --arch qwen3 --n-layer 2 --n-embd 256 --n-head 4 --n-head-kv 2 --head-dim 64 --n-ff 256 --type Q4_K_M -j 1

# every preset: its architecture, keys, tensors and real vocabulary, shrunk
for p in tinyllama-1.1b qwen3-0.6b llama-3.2-1b gemma3-1b smollm2-360m qwen2.5-0.5b; do
    gen "preset-$p" --preset "$p" $SMALL || continue
    # the vocabulary is the real size
    want=$(case $p in tinyllama*) echo 32000 ;; qwen*) echo 151936 ;; llama*) echo 128256 ;;
        gemma*) echo 262144 ;; smollm*) echo 49152 ;; esac)
    # the highest id the model accepts is want - 1
    if "$BIN" "$T/preset-$p.gguf" --prompt-ids "$((want - 1))" -n 1 -t 0 -j 1 -q >/dev/null 2>&1 &&
        ! "$BIN" "$T/preset-$p.gguf" --prompt-ids "$want" -n 1 -t 0 -j 1 -q >/dev/null 2>&1; then ok
    else bad "$p: vocabulary is not $want tokens"; fi
done

# English text: word-sized pieces (the real vocabularies give ~1.1-1.3
# tokens a word on this text; a byte-level fallback would give ~5)
TEXT="Once upon a time, in a small village near the mountains, there lived a young girl who loved to read books. Every morning she walked to the old library at the end of the street."
for p in tinyllama-1.1b qwen3-0.6b llama-3.2-1b gemma3-1b smollm2-360m qwen2.5-0.5b; do
    [ -f "$T/preset-$p.gguf" ] || continue
    if ids=$("$BIN" "$T/preset-$p.gguf" -p "$TEXT" --tokenize -q 2>"$T/err"); then
        n=$(echo "$ids" | wc -w)
        if [ "$n" -ge 34 ] && [ "$n" -le 60 ]; then ok; else bad "$p: $n tokens for 35 words"; fi
    else
        bad "$p: --tokenize failed ($(head -c 200 "$T/err"))"
    fi
done
# the specials are where the real models have them, parsed as one token
check_ids() { # preset text expected-ids
    got=$("$BIN" "$T/preset-$1.gguf" -p "$2" --tokenize -q 2>/dev/null)
    if [ "$got" = "$3" ]; then ok; else bad "$1: '$2' tokenizes to '$got', expected '$3'"; fi
}
check_ids qwen3-0.6b "<|im_start|><|im_end|>" "151644 151645"
check_ids qwen2.5-0.5b "<|endoftext|><|file_sep|>" "151643 151664"
check_ids llama-3.2-1b "<|start_header_id|><|eot_id|>" "128000 128006 128009"
check_ids smollm2-360m "<|im_start|><|im_end|>" "1 2"
check_ids gemma3-1b "<start_of_turn><end_of_turn>" "2 105 106"

# the chat template each preset carries is detected as its family's
check_chat() { # preset want-prefix want-inside [absent]
    got=" $("$BIN" "$T/preset-$1.gguf" --chat -p "Hi" --tokenize -q 2>/dev/null) "
    case "$got" in
    " $2 "*" $3 "*) if [ -n "${4:-}" ] && case "$got" in *" $4 "*) true ;; *) false ;; esac; then
            bad "$1: --chat gives '$got' (has $4)"; else ok; fi ;;
    *) bad "$1: --chat gives '$got', expected '$2 ...$3...'" ;;
    esac
}
check_chat qwen3-0.6b 151644 151667          # ChatML, an empty <think> block (non-thinking)
check_chat qwen2.5-0.5b 151644 151645 151667 # ChatML, no <think>
check_chat llama-3.2-1b "128000 128006" 128009
check_chat gemma3-1b "2 105" 106
check_chat smollm2-360m 1 2

# same weights whatever the thread count
if "$GEN" "$T/j1.gguf" --arch gemma3 $SMALL --type Q4_K >/dev/null 2>&1 &&
    "$GEN" "$T/j3.gguf" --arch gemma3 --n-layer 2 --n-embd 64 --n-head 4 --n-head-kv 2 --head-dim 16 --n-ff 128 \
        --type Q4_K -j 3 >/dev/null 2>&1 && cmp -s "$T/j1.gguf" "$T/j3.gguf"; then ok
else bad "-j 1 and -j 3 write different files"; fi

# refusals: usage errors exit 2 with one line
for args in "--arch bogus" "--tokenizer bogus" "--preset bogus" "--arch llama --swa 16" "--head-dim 15" \
    "--tokenizer llama3 --n-vocab 300"; do
    "$GEN" "$T/x.gguf" $args >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc = 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && [ ! -f "$T/x.gguf" ]; then ok
    else bad "picolm-gen $args: exit $rc, $(wc -l <"$T/err") lines"; fi
done

# --vocab: real vocabularies copied whole (BPE merges included)
if [ -f "$DATA/README.md" ]; then
    for v in vocab/vocab-qwen3.gguf vocab/vocab-llama3.gguf vocab/ggml-vocab-llama-spm.gguf; do
        name=$(basename "$v" .gguf)
        gen "copy-$name" --arch qwen3 --vocab "$DATA/$v" $SMALL || continue
        if [ -f "$DATA/$v.inp" ]; then
            # the first test string tokenizes as with the vocab file itself
            s=$(awk '/^__ggml_vocab_test__$/ { exit } { print }' "$DATA/$v.inp")
            a=$("$BIN" "$DATA/$v" -p "$s" --tokenize --no-bos -q 2>/dev/null)
            b=$("$BIN" "$T/copy-$name.gguf" -p "$s" --tokenize --no-bos -q 2>/dev/null)
            if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else bad "--vocab $v: '$b' != '$a'"; fi
        fi
    done
else
    echo "gen: --vocab checks skipped: no reference data at $DATA"
fi

echo "gen: $pass passed, $fail failed"
[ "$fail" = 0 ]
