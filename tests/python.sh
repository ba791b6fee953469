#!/bin/sh
# python.sh - the Python binding (bindings/python/picolm.py, ctypes) against
# this build's libpicolm.so: bindings/python/test_picolm.py, which compares
# its greedy text with $PICOLM's. Skips with one line without python3, the
# shared library or the test model.
# Usage: BUILD=build PICOLM=build/picolm sh tests/python.sh
set -u
B=${BUILD:-build}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
LIB=$B/libpicolm.so
if ! command -v python3 >/dev/null 2>&1; then
    echo "python: skipped: no python3"
    exit 0
fi
if [ ! -f "$LIB" ]; then
    echo "python: skipped: no $LIB (not built for this target)"
    exit 0
fi
if nm -D --undefined-only "$LIB" 2>/dev/null | grep -q __asan_; then
    echo "python: skipped: $LIB is built with AddressSanitizer (python3 cannot load it)"
    exit 0
fi
if [ ! -f "$DATA/models/tiny32k-Q4_K_M.gguf" ]; then
    echo "python: skipped: no $DATA/models/tiny32k-Q4_K_M.gguf (set PICOLM_TESTDATA)"
    exit 0
fi
PICOLM_LIB=$LIB PICOLM_TESTDATA=$DATA PICOLM=${PICOLM:-$B/picolm} python3 bindings/python/test_picolm.py
