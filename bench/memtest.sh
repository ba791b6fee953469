#!/bin/sh
# memtest.sh - the 1.1B model inside a memory cgroup of LIMIT_MB (256 by
# default): it must complete at -c 2048 with the same greedy tokens as
# without the limit, with private memory <= 50 MiB (<= 16 MiB at -c 512:
# the issue's MB, whose "44 MB of FP16 KV at 2048" are 44 MiB), also once
# the whole context is in use (a prompt that fills it).
# Reports generation tok/s and disk bytes read per token for plain mmap
# (--mem-budget -1) against the resident budget (default), and unlimited.
# Then the same pair again with the disk throttled to SLOW_MBPS MB/s (200 by
# default, an SD card or eMMC class of storage; 0 skips) through cgroup v1
# blkio or v2 io.max, where the disk of this machine is much faster than a
# small board's and the reads cost CPU time more than waiting.
# Needs root and cgroup v1 (memory.limit_in_bytes) or v2 (memory.max);
# skips with a message where neither can be created.
# Usage: make memtest  (or sh bench/memtest.sh; LIMIT_MB, N, N_SLOW, SLOW_MBPS,
# THREADS, BENCH_MODEL)
set -u
BIN=${PICOLM:-build/picolm}
GEN=${PICOLM_GEN:-build/picolm-gen}
MODEL=${BENCH_MODEL:-models/tinyllama-1.1b-Q4_K_M.gguf}
LIMIT_MB=${LIMIT_MB:-256}
N=${N:-24}
N_SLOW=${N_SLOW:-8}
SLOW_MBPS=${SLOW_MBPS:-200}
J=${THREADS:-2}
PROMPT="Once upon a time, in a small village by the sea, there lived"

if [ ! -f "$MODEL" ]; then
    mkdir -p "$(dirname "$MODEL")"
    "$GEN" "$MODEL" --preset tinyllama-1.1b --type Q4_K_M || exit 1
fi

CG=""
if [ -w /sys/fs/cgroup/memory ] && mkdir "/sys/fs/cgroup/memory/picolm-$$" 2>/dev/null; then
    CG=/sys/fs/cgroup/memory/picolm-$$
    echo $((LIMIT_MB << 20)) >"$CG/memory.limit_in_bytes"
    [ -f "$CG/memory.memsw.limit_in_bytes" ] && echo $((LIMIT_MB << 20)) >"$CG/memory.memsw.limit_in_bytes" 2>/dev/null
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir "/sys/fs/cgroup/picolm-$$" 2>/dev/null; then
    CG=/sys/fs/cgroup/picolm-$$
    if ! echo $((LIMIT_MB << 20)) >"$CG/memory.max" 2>/dev/null; then
        rmdir "$CG"
        CG=""
    fi
fi
if [ -z "$CG" ]; then
    echo "memtest: skipped: cannot create a memory cgroup here (needs root and cgroup v1 or v2 with memory)"
    exit 0
fi
T=$(mktemp -d)
IO=""
SLOW_V2=0
cleanup() {
    rm -rf "$T"
    rmdir "$CG" 2>/dev/null
    [ -n "$IO" ] && rmdir "$IO" 2>/dev/null
}
trap cleanup EXIT

# the throttle: the whole disk under the model file (major:minor)
DEV=$(stat -c '%Hd:%Ld' "$MODEL" 2>/dev/null)
case "$DEV" in *:0) ;; *) DEV="" ;; esac # partitions: throttle the disk, not known here
if [ "$SLOW_MBPS" -gt 0 ] && [ -n "$DEV" ]; then
    if [ -w /sys/fs/cgroup/blkio ] && mkdir "/sys/fs/cgroup/blkio/picolm-$$" 2>/dev/null; then
        IO=/sys/fs/cgroup/blkio/picolm-$$
        echo "$DEV $((SLOW_MBPS * 1000000))" >"$IO/blkio.throttle.read_bps_device" 2>/dev/null || {
            rmdir "$IO"
            IO=""
        }
    elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then # v2: io.max on the memory cgroup itself
        echo "+io" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
        echo "$DEV rbps=$((SLOW_MBPS * 1000000))" >"$CG/io.max" 2>/dev/null && SLOW_V2=1
    fi
fi

drop_cache() { dd if="$MODEL" iflag=nocache count=0 2>/dev/null; }
in_cg() { sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@"; }
in_slow() { sh -c 'echo $$ >"$0/cgroup.procs" && echo $$ >"$1/cgroup.procs" && shift && exec "$@"' "$CG" "$IO" "$@"; }
field() { sed -n "$2" "$1"; }
gen_tps() { field "$1" 's/.*generated [0-9]* tokens, \([0-9.]*\) tok\/s.*/\1/p'; }
disk() { field "$1" 's/.*disk reads during generation: \([0-9.]*\) MB per token.*/\1/p'; }
priv() { field "$1" 's/.*private \([0-9.]*\) MB.*/\1/p'; }
res() { field "$1" 's/.* \([0-9]*\/[0-9]*\) layers resident.*/\1/p'; }

run() { # name, extra args...
    name=$1
    shift
    "$@" "$MODEL" -p "$PROMPT" -n "${NT:-$N}" -t 0 -j "$J" >"$T/$name.out" 2>"$T/$name.err"
    echo $? >"$T/$name.rc"
}

fail=0
check() { if eval "$1"; then :; else echo "memtest: FAIL: $2"; fail=1; fi; }

run unlimited "$BIN" -c 2048
drop_cache
run plain in_cg "$BIN" -c 2048 --mem-budget -1
drop_cache
run budget in_cg "$BIN" -c 2048
drop_cache
run small in_cg "$BIN" -c 512
ids() { awk -v n="$1" 'BEGIN { srand(1); printf "1"; for (i = 1; i < n; i++) printf " %d", 3 + int(rand() * 31990); print "" }'; }
sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$BIN" "$MODEL" --prompt-ids "$(ids 2040)" -n 8 -t 0 -j "$J" \
    -c 2048 >/dev/null 2>"$T/full.err"
echo $? >"$T/full.rc"
sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$BIN" "$MODEL" --prompt-ids "$(ids 504)" -n 8 -t 0 -j "$J" \
    -c 512 >/dev/null 2>"$T/full512.err"
echo $? >"$T/full512.rc"
SLOW=""
if [ -n "$IO" ] || [ "$SLOW_V2" = 1 ]; then
    SLOW="slow_plain slow_budget"
    [ "$SLOW_V2" = 1 ] && slow=in_cg || slow=in_slow
    drop_cache
    NT=$N_SLOW run slow_plain $slow "$BIN" -c 2048 --mem-budget -1
    drop_cache
    NT=$N_SLOW run slow_budget $slow "$BIN" -c 2048
    NT=$N_SLOW run slow_ref "$BIN" -c 2048
elif [ "$SLOW_MBPS" -gt 0 ]; then
    echo "memtest: no throttled-disk runs (no blkio/io controller for the disk ${DEV:-of $MODEL})"
fi

printf 'model %s, cgroup limit %d MB, %d tokens, %d threads\n' "$MODEL" "$LIMIT_MB" "$N" "$J"
printf '%-28s %10s %14s %12s %10s\n' run "gen tok/s" "disk MB/token" "private MB" resident
for r in unlimited plain budget small full full512 $SLOW; do
    case $r in
    unlimited) label="no limit, -c 2048" ;;
    plain) label="${LIMIT_MB} MB, plain mmap" ;;
    budget) label="${LIMIT_MB} MB, resident budget" ;;
    small) label="${LIMIT_MB} MB, -c 512" ;;
    full) label="${LIMIT_MB} MB, 2048 of 2048 used" ;;
    full512) label="${LIMIT_MB} MB, 512 of 512 used" ;;
    slow_plain) label="+ ${SLOW_MBPS} MB/s disk, plain" ;;
    slow_budget) label="+ ${SLOW_MBPS} MB/s disk, budget" ;;
    esac
    printf '%-28s %10s %14s %12s %10s\n' "$label" "$(gen_tps "$T/$r.err")" "$(disk "$T/$r.err")" \
        "$(priv "$T/$r.err")" "$(res "$T/$r.err")"
done
for r in plain budget small $SLOW; do
    ref=unlimited
    case $r in slow_*) ref=slow_ref ;; esac
    check '[ "$(cat "$T/$r.rc")" = 0 ]' "$r run exited $(cat "$T/$r.rc"): $(tail -n 3 "$T/$r.err")"
    check 'cmp -s "$T/$ref.out" "$T/$r.out"' "$r run gave other tokens than the unlimited run"
done
for r in full full512; do
    check '[ "$(cat "$T/$r.rc")" = 0 ]' "$r run exited $(cat "$T/$r.rc"): $(tail -n 3 "$T/$r.err")"
done
mib() { awk -v p="$(priv "$1")" -v l="$2" 'BEGIN { exit !(p != "" && p / 1.048576 <= l) }'; }
check 'mib "$T/budget.err" 50 && mib "$T/full.err" 50' "private memory above 50 MiB at -c 2048"
check 'mib "$T/small.err" 16 && mib "$T/full512.err" 16' "private memory above 16 MiB at -c 512"
ratio() { # label, plain run, budget run
    awk -v l="$1" -v a="$(gen_tps "$T/$2.err")" -v b="$(gen_tps "$T/$3.err")" \
        -v da="$(disk "$T/$2.err")" -v db="$(disk "$T/$3.err")" \
        'BEGIN { if (a > 0 && db > 0) printf "resident budget vs plain mmap, %s: %.2fx generation speed, %.2fx fewer disk bytes per token\n", l, b / a, da / db }'
}
ratio "under the limit" plain budget
[ -n "$SLOW" ] && ratio "${SLOW_MBPS} MB/s disk" slow_plain slow_budget
[ $fail = 0 ] && echo "memtest: ok"
exit $fail
