#!/bin/sh
# size.sh - stripped size of the picolm CLI in every build folder present
# (`make size`), stripped with the binutils of the folder's target. The
# binaries themselves are left as built.
cd "$(dirname "$0")/.." || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
printf '%-26s %9s %7s  %s\n' file stripped KiB "as built"
for d in build build-static build-debug build-aarch64 build-armhf build-riscv64 build-windows; do
    case $d in
    build-aarch64) s=aarch64-linux-gnu-strip ;;
    build-armhf) s=arm-linux-gnueabihf-strip ;;
    build-riscv64) s=riscv64-linux-gnu-strip ;;
    build-windows) s=x86_64-w64-mingw32-strip ;;
    *) s=strip ;;
    esac
    for b in "$d/picolm" "$d/picolm.exe"; do
        [ -f "$b" ] || continue
        command -v "$s" >/dev/null || { printf '%-16s %s missing\n' "$d" "$s"; continue; }
        cp "$b" "$T/p" && "$s" "$T/p" 2>/dev/null || continue
        n=$(wc -c <"$T/p")
        printf '%-26s %9d %7d  %d\n' "$b" "$n" $(((n + 1023) / 1024)) "$(wc -c <"$b")"
    done
done
