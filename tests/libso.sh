#!/bin/sh
# libso.sh - the libraries as a user gets them: `make install` into a
# temporary prefix (programs, libpicolm.so with its soname links,
# libpicolm.a, picolm.h, picolm.pc), then tests/libso.c built against the
# installed header and linked three ways (the shared library, the static
# archive, `pkg-config --cflags --libs picolm`); each must print the same
# greedy text and JSON-mode document (JSON, checked with python3 when
# there), and the libraries must export nothing but pl_* symbols.
# Usage: BUILD=build sh tests/libso.sh (from the repository root; make test
# sets LIBSO_MAKE and LIBSO_CC to its own make and compiler)
set -u
B=${BUILD:-build}
DATA=${PICOLM_TESTDATA:-../shared/testdata}
MODEL=$DATA/models/tiny32k-Q4_K_M.gguf
CC=${LIBSO_CC:-${CC:-cc}}
MAKE=${LIBSO_MAKE:-make BUILD=$B}
if [ ! -f "$B/libpicolm.so" ]; then
    echo "libso: skipped: no $B/libpicolm.so (not built for this target)"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL libso: $*" >&2; }
P=$T/prefix

if $MAKE -s install PREFIX="$P" >"$T/install.out" 2>&1; then ok; else bad "make install: $(tail -3 "$T/install.out")"; fi
for f in bin/picolm bin/picolm-server lib/libpicolm.so.0 lib/libpicolm.so lib/libpicolm.a include/picolm.h \
         lib/pkgconfig/picolm.pc; do
    if [ -e "$P/$f" ]; then ok; else bad "make install: no $f"; fi
done
if [ -L "$P/lib/libpicolm.so" ] && [ -L "$P/lib/libpicolm.so.0" ]; then ok; else bad "libpicolm.so, .so.0: not symlinks"; fi
soname=$(readelf -d "$P/lib/libpicolm.so" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [ "$soname" = libpicolm.so.0 ]; then ok; else bad "soname '$soname', want libpicolm.so.0"; fi

# only pl_* exported, from either library
leak=$(nm -D --defined-only "$P/lib/libpicolm.so" | awk 'NF == 3 && $3 !~ /^pl_/ { print $3 }' | head -5)
if [ -z "$leak" ]; then ok; else bad "libpicolm.so exports $(echo $leak)"; fi
leak=$(nm -g --defined-only "$P/lib/libpicolm.a" | awk 'NF == 3 && $3 !~ /^pl_/ { print $3 }' | head -5)
if [ -z "$leak" ]; then ok; else bad "libpicolm.a defines global $(echo $leak)"; fi

# build: NAME CC-ARGS...
build() {
    b_name=$1; shift
    if $CC -std=c11 -Wall -Wextra -o "$T/$b_name" tests/libso.c "$@" >"$T/cc.err" 2>&1; then ok; return 0; fi
    bad "$b_name: cc failed: $(head -c 400 "$T/cc.err")"
    return 1
}
build shared -I"$P/include" -L"$P/lib" -lpicolm -Wl,-rpath,"$P/lib"
build static -I"$P/include" "$P/lib/libpicolm.a" -lm -lpthread
if command -v pkg-config >/dev/null 2>&1; then
    build pkgconfig $(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs picolm) -Wl,-rpath,"$P/lib"
else
    echo "libso: pkg-config not installed: the pkg-config build is not tested"
fi
if [ -x "$T/shared" ] && ldd "$T/shared" 2>/dev/null | grep -q "$P/lib/libpicolm.so.0"; then ok; else bad "shared: not linked to the installed libpicolm.so.0"; fi

if [ ! -f "$MODEL" ]; then
    echo "libso: no $MODEL: the programs were built but not run"
else
    want=
    for p in shared static pkgconfig; do
        [ -x "$T/$p" ] || continue
        if ! out=$("$T/$p" "$MODEL" "Once upon a time" 12 2>"$T/err"); then
            bad "$p: exited $? ($(head -c 300 "$T/err"))"
            continue
        fi
        if [ -z "$out" ]; then bad "$p: no text"; continue; fi
        [ -n "$want" ] || want=$out
        if [ "$out" = "$want" ]; then ok; else bad "$p: '$out', the shared build printed '$want'"; fi
    done
    if command -v python3 >/dev/null 2>&1 && [ -n "$want" ]; then
        doc=$(printf '%s\n' "$want" | sed -n 2p)
        if printf '%s' "$doc" | python3 -c 'import json, sys; json.loads(sys.stdin.read())' 2>/dev/null; then ok
        else bad "the JSON mode's text is not JSON: '$doc'"; fi
    fi
fi
echo "libso: $pass passed, $fail failed"
[ "$fail" = 0 ]
