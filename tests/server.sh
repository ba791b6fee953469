#!/bin/sh
# server.sh - a live picolm-server on a free localhost port with
# tiny32k-Q4_K_M.gguf, driven by the official `openai` npm client
# (tests/server.mjs), then SIGTERM: it must shut down cleanly. Beside it a
# plain one, and a --draft one on tiny512-Q4_K_M (tiny512-Q8_0 drafting:
# tiny32k has no partner of its vocabulary) with a plain twin. The client
# is installed once into build/npm (PICOLM_NPM_DIR); without the test data,
# node or the npm registry (outside CI) the suite says so in one line.
set -u
BIN=${PICOLM_SERVER:-build/picolm-server}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
NPM_DIR=${PICOLM_NPM_DIR:-build/npm}
if [ ! -f "$DATA/README.md" ]; then
    echo "server: skipped: no reference data at $DATA (set PICOLM_TESTDATA)"
    exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    [ "${CI:-}" = true ] && { echo "server: FAIL: node and npm are needed"; echo "server: 0 passed, 1 failed"; exit 1; }
    echo "server: skipped: no node/npm on this machine"
    exit 0
fi
if [ ! -f "$NPM_DIR/node_modules/openai/package.json" ]; then
    mkdir -p "$NPM_DIR"
    if ! npm install --prefix "$NPM_DIR" --silent --no-audit --no-fund openai@7 >"$NPM_DIR/install.log" 2>&1; then
        if [ "${CI:-}" = true ]; then
            cat "$NPM_DIR/install.log"
            echo "server: FAIL: npm install openai failed"
            echo "server: 0 passed, 1 failed"
            exit 1
        fi
        echo "server: skipped: cannot install the openai npm client (offline?)"
        exit 0
    fi
fi
T=$(mktemp -d)
trap 'kill "$PID" ${PID2:-} ${PID3:-} ${PID4:-} 2>/dev/null; rm -rf "$T"' EXIT
# start_server LOG MODEL ARGS...: a server of $DATA/models/MODEL.gguf on a
# free port in the background ($! its pid); then wait_port LOG PID prints
# the port it listens on
start_server() {
    log=$1 model=$2
    shift 2
    "$BIN" "$DATA/models/$model.gguf" --port 0 "$@" >"$log" 2>&1 &
}
wait_port() {
    for _ in $(seq 1 100); do
        p=$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$1")
        [ -n "$p" ] && { echo "$p"; return; }
        kill -0 "$2" 2>/dev/null || return
        sleep 0.1
    done
}
start_server "$T/log" tiny32k-Q4_K_M -c 512 --parallel 4 -j 2 --max-queue 64 --ctx-overflow drop --lookup 3
PID=$!
port=$(wait_port "$T/log" "$PID")
if [ -z "$port" ]; then
    cat "$T/log"
    echo "server: FAIL: picolm-server did not start"
    echo "server: 0 passed, 1 failed"
    exit 1
fi
# a second server without --lookup: the same answers, bit for bit
start_server "$T/log2" tiny32k-Q4_K_M -c 512 --parallel 2 -j 1
PID2=$!
# --draft (two slots, each drafting on its own sequence) and its plain twin
start_server "$T/log3" tiny512-Q4_K_M -c 256 --parallel 2 -j 1 --draft "$DATA/models/tiny512-Q8_0.gguf" --draft-max 6
PID3=$!
start_server "$T/log4" tiny512-Q4_K_M -c 256 --parallel 1 -j 1
PID4=$!
port2=$(wait_port "$T/log2" "$PID2")
port3=$(wait_port "$T/log3" "$PID3")
port4=$(wait_port "$T/log4" "$PID4")
[ -n "$port3" ] || cat "$T/log3"
[ -n "$port4" ] || cat "$T/log4"
case "$BIN" in *build-san/* | *build-tsan/*) export SERVER_SAN=1 ;; esac
SERVER_PID=$PID SERVER_BIN=$BIN SERVER_MODELS=$DATA/models \
    node tests/server.mjs "http://127.0.0.1:$port/v1" "$NPM_DIR" "${port2:+http://127.0.0.1:$port2/v1}" \
    "http://127.0.0.1:${port3:-1}/v1" "http://127.0.0.1:${port4:-1}/v1"
rc=$?
kill -TERM "$PID2" "$PID3" "$PID4" 2>/dev/null
wait "$PID2" "$PID3" "$PID4" 2>/dev/null
kill -TERM "$PID"
for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
    echo "FAIL server: no clean shutdown on SIGTERM within 5 s"
    rc=1
fi
wait "$PID" 2>/dev/null
exit $rc
