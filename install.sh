#!/bin/sh
# install.sh - build picolm for this machine and install it; optionally
# download TinyLlama 1.1B Chat v1.0 Q4_K_M with a SHA-256 check. Safe to
# re-run: the binary is replaced atomically, a model already present and
# verified is not downloaded again (so it works offline).
#
#   sh install.sh [--prefix DIR] [--model] [--model-dir DIR] [--no-build] [-j N]
#
#   --prefix DIR      where the picolm binary goes (default ~/.local/bin)
#   --model           also download the model (about 638 MB)
#   --model-dir DIR   where the model goes (default ~/.local/share/picolm)
#   --no-build        do not build or install (with --model: `make model`)
#   -j N              threads for the build and the PicoClaw snippet (default: all cores)
#
# Run it from a clone (sh install.sh, or piped: cat install.sh | sh -s --
# ARGS, in the clone's folder). Piped outside a clone it needs the source:
# PICOLM_SRC=DIR names a clone, PICOLM_GIT=URL one to clone into
# ~/.local/src/picolm; without either it says so and stops.
# PICOLM_MODEL_URL and PICOLM_MODEL_SHA256 replace the model (both, or the
# check fails); curl (or wget) fetches it, file:// URLs included (an
# offline install: PICOLM_MODEL_URL=file:///path/model.gguf).
set -eu

MODEL_URL_DEFAULT=https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf
# SHA-256 of that file (668,788,096 bytes; Hugging Face's LFS object id)
MODEL_SHA256_DEFAULT=9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0

usage() {
    cat <<'USAGE'
sh install.sh [--prefix DIR] [--model] [--model-dir DIR] [--no-build] [-j N]

  --prefix DIR      where picolm and picolm-server go (default ~/.local/bin)
  --model           also download TinyLlama 1.1B Chat Q4_K_M (about 638 MB, SHA-256 checked)
  --model-dir DIR   where the model goes (default ~/.local/share/picolm)
  --no-build        do not build or install (with --model: `make model`)
  -j N              threads for the build and the PicoClaw snippet (default: all cores)

From a clone: sh install.sh. Piped (curl ... | sh -s -- ARGS) in a clone's
folder, the same; elsewhere PICOLM_SRC=DIR (a clone) or PICOLM_GIT=URL (to
clone into ~/.local/src/picolm). Offline: PICOLM_MODEL_URL=file:///path/m.gguf
with PICOLM_MODEL_SHA256=its sum.
USAGE
}
say() { printf 'picolm install: %s\n' "$*"; }
die() { printf 'picolm install: error: %s\n' "$*" >&2; exit 1; }

prefix="${HOME:-.}/.local/bin"
model_dir="${HOME:-.}/.local/share/picolm"
want_model=0 build=1 threads=""
while [ $# -gt 0 ]; do
    case $1 in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift ;;
    --prefix=*) prefix=${1#*=} ;;
    --model) want_model=1 ;;
    --model-dir) [ $# -ge 2 ] || die "--model-dir needs a directory"; model_dir=$2; shift ;;
    --model-dir=*) model_dir=${1#*=} ;;
    --no-build) build=0 ;;
    -j) [ $# -ge 2 ] || die "-j needs a number"; threads=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

# paths as the caller meant them, before the source folder becomes the cwd
case $prefix in /*) ;; *) prefix=$(pwd)/$prefix ;; esac
case $model_dir in /*) ;; *) model_dir=$(pwd)/$model_dir ;; esac

# ---- the source: this script's folder, the cwd when piped, or PICOLM_SRC / PICOLM_GIT
is_src() { [ -f "$1/Makefile" ] && [ -f "$1/include/picolm.h" ] && [ -f "$1/tools/picolm.c" ]; }
src=""
if [ -f "$0" ] && is_src "$(dirname "$0")"; then src=$(cd "$(dirname "$0")" && pwd)
elif is_src .; then src=$(pwd)
elif [ -n "${PICOLM_SRC:-}" ]; then
    is_src "$PICOLM_SRC" || die "PICOLM_SRC=$PICOLM_SRC is not a picolm clone"
    src=$(cd "$PICOLM_SRC" && pwd)
elif [ -n "${PICOLM_GIT:-}" ]; then
    command -v git >/dev/null 2>&1 || die "PICOLM_GIT needs git"
    src="${HOME:-.}/.local/src/picolm"
    if is_src "$src"; then say "using the clone in $src"
    else git clone --depth 1 "$PICOLM_GIT" "$src" || die "cannot clone $PICOLM_GIT"; fi
elif [ $build = 0 ]; then src=$(pwd) # only the model: no source needed
else
    die "no picolm source here: run this in a clone (git clone REPO && cd picolm && sh install.sh), or set PICOLM_SRC=DIR or PICOLM_GIT=URL"
fi
cd "$src"

# ---- platform
os=$(uname -s 2>/dev/null || echo unknown)
arch=$(uname -m 2>/dev/null || echo unknown)
exe=""
case $os in
Linux)
    case $arch in
    aarch64 | arm64) target=pi ;;       # 64-bit Arm (Pi 3/4/5 ...): NEON
    armv6*) target=pi-arm32 ;;          # Pi Zero / Pi 1
    riscv64) target=riscv ;;            # LicheeRV, VisionFive ...
    *) target=native ;;
    esac ;;
MINGW* | MSYS* | CYGWIN*) target=native exe=.exe ;;
*) target=native ;;
esac
if [ -z "$threads" ]; then
    threads=$(getconf _NPROCESSORS_ONLN 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 4)
fi
[ $build = 1 ] && say "platform $os $arch: make $target"

# ---- build and install
bin="$prefix/picolm$exe"
if [ $build = 1 ]; then
    cc=""
    for c in ${CC:-} cc gcc clang; do
        if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
    done
    if [ -z "$cc" ] || ! command -v make >/dev/null 2>&1; then
        what="a C compiler (cc, gcc or clang) and make"
        if [ "$os" = Darwin ]; then hint="xcode-select --install"
        elif command -v apt-get >/dev/null 2>&1; then hint="sudo apt-get install gcc make"
        elif command -v dnf >/dev/null 2>&1; then hint="sudo dnf install gcc make"
        elif command -v apk >/dev/null 2>&1; then hint="sudo apk add build-base"
        elif command -v pacman >/dev/null 2>&1; then hint="sudo pacman -S gcc make"
        elif command -v opkg >/dev/null 2>&1; then hint="opkg install gcc make"
        else hint="your system's gcc (or clang) and make packages"; fi
        die "picolm needs $what; install them with: $hint"
    fi
    make -s -j "$threads" "$target" CC="$cc" || die "build failed (make -j $threads $target CC=$cc)"
    [ -x "build/picolm$exe" ] || die "build/picolm$exe missing after make"
    mkdir -p "$prefix" || die "cannot create $prefix"
    # copy beside, then rename: a running picolm keeps its old file
    cp "build/picolm$exe" "$bin.tmp.$$" && chmod 755 "$bin.tmp.$$" && mv -f "$bin.tmp.$$" "$bin" ||
        { rm -f "$bin.tmp.$$"; die "cannot install into $prefix"; }
    say "installed $bin ($("$bin" --version 2>/dev/null || echo '?'))"
    if [ -x "build/picolm-server" ]; then # the OpenAI-compatible server (POSIX only)
        cp "build/picolm-server" "$prefix/picolm-server.tmp.$$" && chmod 755 "$prefix/picolm-server.tmp.$$" &&
            mv -f "$prefix/picolm-server.tmp.$$" "$prefix/picolm-server" ||
            { rm -f "$prefix/picolm-server.tmp.$$"; die "cannot install picolm-server into $prefix"; }
        say "installed $prefix/picolm-server"
    fi
    case ":${PATH:-}:" in
    *":$prefix:"*) ;;
    *) say "note: $prefix is not in PATH; add: export PATH=\"$prefix:\$PATH\"" ;;
    esac
elif command -v picolm >/dev/null 2>&1 && [ ! -x "$bin" ]; then
    bin=$(command -v picolm)
fi

# ---- model
sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
    elif command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 "$1" | sed 's/.*= *//'
    else die "no sha256sum, shasum or openssl to check the model with"; fi
}

model=""
if [ $want_model = 1 ]; then
    url=${PICOLM_MODEL_URL:-$MODEL_URL_DEFAULT}
    sum=$(printf '%s' "${PICOLM_MODEL_SHA256:-$MODEL_SHA256_DEFAULT}" | tr 'A-F' 'a-f')
    name=${url##*/}
    name=${name%%\?*}
    [ -n "$name" ] || die "cannot name the model file from $url"
    model="$model_dir/$name"
    mkdir -p "$model_dir" || die "cannot create $model_dir"
    if [ -f "$model" ] && [ "$(sha256 "$model")" = "$sum" ]; then
        say "model $model present and verified"
    else
        [ -f "$model" ] && say "model $model fails the check: fetching it again"
        say "downloading $url"
        part="$model.part"
        if command -v curl >/dev/null 2>&1; then
            # resume a partial download; a completed but bad one starts over
            curl -fL --retry 3 -C - -o "$part" "$url" || { rm -f "$part"; curl -fL --retry 3 -o "$part" "$url"; } ||
                { rm -f "$part"; die "download failed: $url"; }
        elif command -v wget >/dev/null 2>&1 && [ "${url#file://}" = "$url" ]; then
            wget -c -O "$part" "$url" || { rm -f "$part"; die "download failed: $url"; }
        elif [ "${url#file://}" != "$url" ]; then
            cp "${url#file://}" "$part" || die "cannot copy ${url#file://}"
        else
            die "need curl or wget to download the model"
        fi
        got=$(sha256 "$part")
        if [ "$got" != "$sum" ]; then
            rm -f "$part"
            die "SHA-256 mismatch for $url: got $got, expected $sum (set PICOLM_MODEL_SHA256 with PICOLM_MODEL_URL)"
        fi
        mv -f "$part" "$model"
        say "model $model verified (sha256 $sum)"
    fi
fi

# ---- how PicoClaw uses it
m=${model:-$model_dir/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf}
id=$(basename "$m" .gguf)
cat <<EOF

Serve it to PicoClaw and any OpenAI client (continuous batching, 4 slots):
  $prefix/picolm-server $m --port 8080 -j $threads

PicoClaw (~/.picoclaw/config.json): an OpenAI-compatible model entry
{
  "agents": { "defaults": { "model": "picolm" } },
  "model_list": [
    {
      "model_name": "picolm",
      "model": "openai/$id",
      "api_base": "http://127.0.0.1:8080/v1",
      "api_key": "none"
    }
  ]
}

Or spawned per answer:  $bin $m -n 256 -t 0.7 -j $threads
(chat prompt on standard input, the answer alone on standard output)
EOF
