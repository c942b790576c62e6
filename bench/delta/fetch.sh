#!/usr/bin/env bash
# bench/delta/fetch.sh — fetch the image pairs of the delta benchmark.
#
#   bench/delta/fetch.sh [--quick] [--data DIR] [--build DIR]
#
# Real consecutive releases of the same binary, from Debian packages:
#
#   pair      package              binary
#   libxml2   libxml2              libxml2.so.2 (the file its symlink names)
#   nginx     nginx-core           nginx
#   expat     libexpat1            libexpat.so.1 (the file its symlink names)
#   grub      grub-efi-amd64-bin   kernel.img
#
# The two newest versions that `apt-cache madison` lists for the machine's
# architecture are downloaded with `apt-get download PKG=VERSION` and
# unpacked with `dpkg-deb -x`. A package with fewer than two versions in the
# index is skipped (and says so): no pair is ever made up.
#
# Cortex-M firmware pairs come from the project's example firmware
# (examples/firmware/build.sh OUTDIR ZLIB_SRC, with FW_VERSION=1 and 2):
#
#   fw-app    version 1 -> version 2, the default build (-Os): a feature
#             release (new filter, LED patterns and report format)
#   fw-o2     version 1 -> version 2, both built with FW_CFLAGS=-O2: the
#             same release under a speed-optimised build
#
# They are skipped with a "not available" reason while the firmware is not
# in the tree or its build fails.
#
# Everything is cached under DIR (default: bench/data/ in the checkout,
# git-ignored); running again re-uses what is there. For each pair NAME the
# result is DIR/pairs/NAME/{old,new,info}, or DIR/pairs/NAME/skip holding
# the reason it is not available. --quick fetches only the quick subset
# (expat, grub, fw-app). --build names a build tree to (re)use for the
# firmware (default: a directory under DIR).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../.." && pwd)"
DATA="$SRC/bench/data"
QUICK=0
FWBUILD=""

die() { printf 'fetch.sh: %s\n' "$*" >&2; exit 1; }
say() { printf 'fetch.sh: %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --data) shift; [ $# -gt 0 ] || die "--data needs a directory"; DATA="$1" ;;
        --build) shift; [ $# -gt 0 ] || die "--build needs a directory"; FWBUILD="$1" ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
[ -n "$FWBUILD" ] || FWBUILD="$DATA/firmware"

# name packages(|-separated, first that holds the binary) path-in-package(glob)
DEB_PAIRS=(
    "libxml2 libxml2 *lib/*/libxml2.so.2"
    "nginx nginx-core|nginx *sbin/nginx"
    "expat libexpat1 *lib/*/libexpat.so.1"
    "grub grub-efi-amd64-bin *lib/grub/x86_64-efi/kernel.img"
)
QUICK_SET=" expat grub fw-app "

in_set() { [ "$QUICK" -eq 0 ] || [[ "$QUICK_SET" == *" $1 "* ]]; }

mark_skip() { # name reason
    local d="$DATA/pairs/$1"
    rm -rf "$d" && mkdir -p "$d"
    printf '%s\n' "$2" > "$d/skip"
    say "$1: not available: $2"
}

UPDATED=0
apt_update_once() {
    [ "$UPDATED" -eq 0 ] || return 0
    UPDATED=1
    if [ "$(id -u)" -eq 0 ]; then
        say "refreshing the package index (apt-get update)"
        apt-get update -qq >&2 || say "apt-get update failed; using the index as it is"
    fi
}

# The versions of PKG for this architecture, newest first, one per line.
versions_of() {
    local arch
    arch="$(dpkg --print-architecture)"
    apt-cache madison "$1" 2>/dev/null |
        awk -F'|' -v a="$arch" '$3 ~ (" " a " Packages") || $3 ~ " all Packages" { gsub(/ /, "", $2); print $2 }' |
        sort -u |
        while read -r v; do printf '%s\n' "$v"; done |
        sort_versions_desc
}

sort_versions_desc() { # insertion sort with dpkg's comparison (a few items)
    local -a vs=() sorted=()
    local v i t
    while read -r v; do [ -n "$v" ] && vs+=("$v"); done
    for v in "${vs[@]+"${vs[@]}"}"; do
        sorted+=("$v")
        i=$(( ${#sorted[@]} - 1 ))
        while [ "$i" -gt 0 ] && dpkg --compare-versions "${sorted[i-1]}" lt "${sorted[i]}"; do
            t="${sorted[i-1]}"; sorted[i-1]="${sorted[i]}"; sorted[i]="$t"
            i=$((i-1))
        done
    done
    for v in "${sorted[@]+"${sorted[@]}"}"; do printf '%s\n' "$v"; done
}

# Download PKG=VER (cached) and print the path of the .deb.
download_deb() {
    local pkg="$1" ver="$2" dir="$DATA/debs" f
    mkdir -p "$dir"
    f=""
    local cand
    for cand in "$dir/${pkg}"_*.deb; do
        [ -f "$cand" ] || continue
        if [ "$(dpkg-deb -f "$cand" Version)" = "$ver" ]; then f="$cand"; break; fi
    done
    if [ -z "$f" ]; then
        say "downloading $pkg=$ver"
        (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
            return 1
        for cand in "$dir/${pkg}"_*.deb; do
            [ -f "$cand" ] || continue
            if [ "$(dpkg-deb -f "$cand" Version)" = "$ver" ]; then f="$cand"; break; fi
        done
    fi
    [ -n "$f" ] || return 1
    printf '%s\n' "$f"
}

# Unpack DEB into a scratch tree and copy the binary at path GLOB (following
# symlinks inside the package) to OUT; print its real path in the package.
extract_binary() {
    local deb="$1" glob="$2" out="$3" tree hit real
    tree="$(mktemp -d "$DATA/x.XXXXXX")"
    dpkg-deb -x "$deb" "$tree"
    hit="$(find "$tree" -path "$tree/$glob" \( -type f -o -type l \) | sort | head -1)"
    if [ -z "$hit" ]; then rm -rf "$tree"; return 1; fi
    real="$(readlink -f "$hit")"
    case "$real" in "$tree"/*) ;; *) rm -rf "$tree"; return 1 ;; esac
    [ -f "$real" ] || { rm -rf "$tree"; return 1; }
    cp "$real" "$out.tmp" && mv "$out.tmp" "$out"
    printf '%s\n' "${real#"$tree"/}"
    rm -rf "$tree"
}

# Does DEB hold a file or symlink at path GLOB?
deb_has() {
    local tree rc=1
    tree="$(mktemp -d "$DATA/x.XXXXXX")"
    dpkg-deb -x "$1" "$tree"
    [ -n "$(find "$tree" -path "$tree/$2" \( -type f -o -type l \) | head -1)" ] && rc=0
    rm -rf "$tree"
    return $rc
}

fetch_deb_pair() {
    local name="$1" pkgs="$2" glob="$3" d="$DATA/pairs/$1"
    local -a cands=() vs=()
    local pkg="" p newdeb olddeb why=""
    IFS='|' read -r -a cands <<< "$pkgs"
    for p in "${cands[@]}"; do
        mapfile -t vs < <(versions_of "$p")
        if [ ${#vs[@]} -lt 2 ]; then
            apt_update_once
            mapfile -t vs < <(versions_of "$p")
        fi
        if [ ${#vs[@]} -lt 2 ]; then
            why="${why:+$why; }the package index lists ${#vs[@]} version(s) of $p, a pair needs two"
            continue
        fi
        if ! newdeb="$(download_deb "$p" "${vs[0]}")"; then
            why="${why:+$why; }apt-get download $p=${vs[0]} failed"; continue
        fi
        if ! deb_has "$newdeb" "$glob"; then
            say "$name: $p ${vs[0]} holds no $glob (a metapackage?); trying the next package"
            why="${why:+$why; }$p holds no $glob"; continue
        fi
        pkg="$p"; break
    done
    if [ -z "$pkg" ]; then mark_skip "$name" "$why"; return 0; fi
    local newv="${vs[0]}" oldv="${vs[1]}"
    local want="package=$pkg old=$oldv new=$newv"
    if [ -f "$d/info" ] && [ -f "$d/old" ] && [ -f "$d/new" ] && grep -qxF "$want" "$d/info"; then
        say "$name: cached ($pkg $oldv -> $newv)"
        return 0
    fi
    local oldpath newpath
    if ! olddeb="$(download_deb "$pkg" "$oldv")"; then mark_skip "$name" "apt-get download $pkg=$oldv failed"; return 0; fi
    rm -rf "$d" && mkdir -p "$d"
    if ! oldpath="$(extract_binary "$olddeb" "$glob" "$d/old")"; then mark_skip "$name" "$glob not found in $pkg $oldv"; return 0; fi
    if ! newpath="$(extract_binary "$newdeb" "$glob" "$d/new")"; then mark_skip "$name" "$glob not found in $pkg $newv"; return 0; fi
    if cmp -s "$d/old" "$d/new"; then mark_skip "$name" "$pkg $oldv and $newv carry the same $glob"; return 0; fi
    {
        echo "$want"
        echo "label=$pkg $oldv -> $newv"
        echo "old_path=$oldpath"
        echo "new_path=$newpath"
    } > "$d/info"
    say "$name: $pkg $oldv -> $newv ($newpath, $(stat -c %s "$d/old") -> $(stat -c %s "$d/new") bytes)"
}

# ---- firmware pairs ---------------------------------------------------------

# Build the example firmware into OUT with FW_VERSION=$1 and extra
# environment; print the image path. The image is the one .bin the build
# leaves in OUT (or, failing that, the .elf turned into a .bin).
build_fw() {
    local ver="$1" out="$2" zsrc="$3"; shift 3
    rm -rf "$out" && mkdir -p "$out"
    if ! env FW_VERSION="$ver" "$@" "$SRC/examples/firmware/build.sh" "$out" "$zsrc" >"$out.log" 2>&1; then
        say "firmware build failed (log: $out.log):"
        tail -5 "$out.log" >&2
        return 1
    fi
    local -a bins=()
    mapfile -t bins < <(find "$out" -maxdepth 2 -name '*.bin' -type f | sort)
    if [ ${#bins[@]} -eq 1 ]; then printf '%s\n' "${bins[0]}"; return 0; fi
    if [ ${#bins[@]} -gt 1 ]; then
        # prefer the application image over e.g. a bootloader
        local b
        for b in "${bins[@]}"; do case "$(basename "$b")" in *app*|*firmware*|*fw*) printf '%s\n' "$b"; return 0 ;; esac; done
        printf '%s\n' "${bins[0]}"; return 0
    fi
    say "firmware build left no .bin in $out"
    return 1
}

# fw_pair NAME DESCRIPTION ZLIB_SRC ENV... : build FW_VERSION=1 and 2 with ENV
fw_pair() {
    local name="$1" what="$2" zsrc="$3"; shift 3
    in_set "$name" || return 0
    local d="$DATA/pairs/$name" v1 v2
    v1="$(build_fw 1 "$FWBUILD/$name-v1" "$zsrc" "$@")" || v1=""
    v2="$(build_fw 2 "$FWBUILD/$name-v2" "$zsrc" "$@")" || v2=""
    if [ -z "$v1" ] || [ -z "$v2" ]; then
        mark_skip "$name" "the example firmware did not build with $what (logs under $FWBUILD)"
        return 0
    fi
    if cmp -s "$v1" "$v2"; then
        mark_skip "$name" "FW_VERSION=1 and 2 built the same image with $what"
        return 0
    fi
    rm -rf "$d" && mkdir -p "$d"
    cp "$v1" "$d/old" && cp "$v2" "$d/new"
    printf 'label=example Cortex-M4 firmware FW_VERSION=1 -> 2, %s\n' "$what" > "$d/info"
    say "$name: $(stat -c %s "$d/old") -> $(stat -c %s "$d/new") bytes ($what)"
}

fetch_fw_pairs() {
    local want=()
    in_set fw-app && want+=(fw-app)
    in_set fw-o2 && want+=(fw-o2)
    [ ${#want[@]} -gt 0 ] || return 0
    local n
    if [ ! -x "$SRC/examples/firmware/build.sh" ]; then
        for n in "${want[@]}"; do mark_skip "$n" "the example firmware (examples/firmware/build.sh) is not in this tree yet"; done
        return 0
    fi
    if ! command -v arm-none-eabi-gcc >/dev/null && [ "$(id -u)" -eq 0 ]; then
        say "installing the Cortex-M cross compiler (gcc-arm-none-eabi)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            gcc-arm-none-eabi binutils-arm-none-eabi libnewlib-arm-none-eabi libxxhash-dev dpkg-dev >/dev/null 2>&1 ||
            say "could not install gcc-arm-none-eabi"
    fi
    if ! command -v arm-none-eabi-gcc >/dev/null; then
        for n in "${want[@]}"; do mark_skip "$n" "arm-none-eabi-gcc is not installed (tests/run.sh deps)"; done
        return 0
    fi
    local zsrc
    if ! zsrc="$("$SRC/tests/fetch-zlib-source.sh" "$FWBUILD/zlib-src")"; then
        for n in "${want[@]}"; do mark_skip "$n" "could not fetch the zlib source for the firmware build"; done
        return 0
    fi
    fw_pair fw-app "default build (-Os)" "$zsrc" FW_CFLAGS=
    fw_pair fw-o2 "FW_CFLAGS=-O2" "$zsrc" FW_CFLAGS=-O2
}

command -v apt-cache >/dev/null || die "apt-cache not found: this benchmark needs a Debian system"
for spec in "${DEB_PAIRS[@]}"; do
    read -r name pkgs glob <<< "$spec"
    in_set "$name" || continue
    fetch_deb_pair "$name" "$pkgs" "$glob"
done
fetch_fw_pairs
