#!/usr/bin/env bash
# otaup — THE test command.
#
#   tests/run.sh [STAGE...]
#
# On a fresh Debian machine, as root, it installs missing build dependencies
# with apt-get, then configures, builds and runs every test. It exits
# non-zero on any failure. Without arguments every stage runs, in order:
#
#   deps      install missing Debian packages (apt-get; needs root)
#   gcc       gcc build, -Wall -Wextra -Werror, all ctest suites
#   sanitize  AddressSanitizer + UndefinedBehaviorSanitizer build, all suites
#   clang     clang build, -Werror, all suites, with the terminal's small
#             variants (OTAUP_SMALL=ON: CRCs without big tables, ...)
#   install   install to a scratch prefix; build the out-of-tree consumer
#             through pkg-config and through find_package, run both; build
#             the library and programs without SQLite and mbedTLS
#   demo      examples/demo.sh (the README's main job) end to end; it exits
#             non-zero if the upgraded terminal is not as promised
#   cross     host and arm-none-eabi builds of the terminal subset; print sizes
#   fuzz      libFuzzer runs of every fuzz target (bounded; needs clang)
#   bigendian (optional, not in the default run) the library, programs and
#             suites built for s390x (big-endian) and run under qemu-user
#
# Environment: OTAUP_BUILD_ROOT (default: build/ in the checkout),
# OTAUP_FUZZ_SECONDS (the frame decoder's target, default 60),
# OTAUP_FUZZ_SECONDS_OTHER (every other target, default 20), OTAUP_JOBS (default: nproc).
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_ROOT="${OTAUP_BUILD_ROOT:-$SRC/build}"
JOBS="${OTAUP_JOBS:-$(nproc 2>/dev/null || echo 2)}"
# libFuzzer time per target: the frame decoder gets a minute, the other
# parsers a shorter bounded run (their corpora also run as ctests).
FUZZ_SECONDS="${OTAUP_FUZZ_SECONDS:-60}"
FUZZ_SECONDS_OTHER="${OTAUP_FUZZ_SECONDS_OTHER:-20}"
ALL_STAGES=(deps gcc sanitize clang install demo cross fuzz)
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=("${ALL_STAGES[@]}")

log() { printf '\n=== %s ===\n' "$*"; }
die() { printf 'tests/run.sh: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$(( $(date +%s) - T0 ))s"; }
T0=$(date +%s)

# Debian packages the build and the tests need.
PKGS=(build-essential cmake pkg-config zlib1g-dev libxxhash-dev check
      libsqlite3-dev libmbedtls-dev clang libclang-rt-14-dev
      gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
      dpkg-dev python3 iproute2 procps)

stage_deps() {
    log "deps"
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all build dependencies present"
        return
    fi
    echo "missing: ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "run as root to install: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure + build + ctest in BUILD_ROOT/$1 with extra cmake args.
build_and_test() {
    local name="$1"; shift
    local dir="$BUILD_ROOT/$name"
    cmake -S "$SRC" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTAUP_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$JOBS"
    (cd "$dir" && ctest --output-on-failure -j "$JOBS")
}

stage_gcc() {
    log "gcc build and tests"
    CC=gcc build_and_test gcc -DCMAKE_C_COMPILER=gcc
}

stage_sanitize() {
    log "ASan + UBSan build and tests"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        build_and_test asan -DCMAKE_C_COMPILER=gcc -DOTAUP_SANITIZE=ON -DOTAUP_BUILD_BENCH=OFF
}

stage_clang() {
    log "clang build and tests (terminal subset with its small variants: OTAUP_SMALL)"
    build_and_test clang -DCMAKE_C_COMPILER=clang -DOTAUP_SMALL=ON
}

stage_install() {
    log "install and out-of-tree consumers"
    local dir="$BUILD_ROOT/gcc" prefix="$BUILD_ROOT/prefix"
    cmake -S "$SRC" -B "$dir" -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$dir" -j "$JOBS" >/dev/null
    rm -rf "$prefix"
    cmake --install "$dir" --prefix "$prefix" >/dev/null
    local pcdir
    pcdir="$(dirname "$(find "$prefix" -name otaup.pc | head -1)")"
    echo "pkg-config: $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs otaup)"
    # 1. through pkg-config
    local out="$BUILD_ROOT/consumer-pc"
    rm -rf "$out" && mkdir -p "$out"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Werror -o "$out/consumer" "$SRC/tests/consumer/consumer.c" \
        $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs otaup)
    "$out/consumer"
    # 2. through find_package
    out="$BUILD_ROOT/consumer-cmake"
    rm -rf "$out"
    cmake -S "$SRC/tests/consumer" -B "$out" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    cmake --build "$out" >/dev/null
    "$out/consumer"
    # 3. the library and the programs without the optional SQLite and
    # mbedTLS (README), warnings as errors: a build that has neither must
    # still compile cleanly
    dir="$BUILD_ROOT/no-optional-deps"
    cmake -S "$SRC" -B "$dir" -DCMAKE_C_COMPILER=gcc -DOTAUP_WERROR=ON -DOTAUP_WITH_SQLITE=OFF \
        -DOTAUP_WITH_MBEDTLS=OFF -DOTAUP_BUILD_TESTS=OFF -DOTAUP_BUILD_BENCH=OFF >/dev/null
    cmake --build "$dir" -j "$JOBS" >/dev/null
    echo "library and programs built without SQLite and mbedTLS: ok"
}

stage_demo() {
    log "examples/demo.sh (the main job, end to end)"
    OTAUP_DEMO_BUILD="$BUILD_ROOT/demo" "$SRC/examples/demo.sh"
}

stage_cross() {
    log "terminal subset on the host (README: -DOTAUP_TERMINAL_ONLY=ON), then its Cortex-M4 cross build"
    cmake -S "$SRC" -B "$BUILD_ROOT/terminal-only" -DOTAUP_TERMINAL_ONLY=ON >/dev/null
    cmake --build "$BUILD_ROOT/terminal-only" -j "$JOBS" >/dev/null
    command -v arm-none-eabi-gcc >/dev/null || die "arm-none-eabi-gcc missing (stage deps)"
    local zsrc
    zsrc="$("$SRC/tests/fetch-zlib-source.sh" "$BUILD_ROOT/zlib-src")"
    local dir="$BUILD_ROOT/cortex-m4"
    cmake -S "$SRC" -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$SRC/cmake/arm-none-eabi.cmake" \
        -DCMAKE_BUILD_TYPE=MinSizeRel -DOTAUP_ZLIB_SOURCE_DIR="$zsrc" -DOTAUP_RAM_RESIDENT=ON >/dev/null
    cmake --build "$dir" -j "$JOBS"
    echo "arm-none-eabi-size of the terminal subset (libotaup.a, per object):"
    arm-none-eabi-size -t "$dir/lib/libotaup.a"
    if [ -x "$SRC/examples/firmware/build.sh" ]; then
        "$SRC/examples/firmware/build.sh" "$BUILD_ROOT/firmware" "$zsrc"
        # negative control of the residency check: without fw.ld's rule for
        # adler32.o, inflate's call to adler32 lands in flash and must fail
        local ld="$BUILD_ROOT/fw-no-adler32.ld" out="$BUILD_ROOT/fw-no-adler32.log"
        sed -e 's/ \*adler32\.o / /' -e '/^ *\*adler32\.o(/d' "$SRC/examples/firmware/fw.ld" > "$ld"
        if FW_LD="$ld" "$SRC/examples/firmware/build.sh" "$BUILD_ROOT/firmware-neg" "$zsrc" > "$out" 2>&1; then
            die "residency check passed an image with adler32 in flash (see $out)"
        fi
        grep -q "inflate -> adler32 (in .text)" "$out" || die "residency check: unexpected failure (see $out)"
        echo "residency check: an image with adler32 left in flash is refused, as it must be"
        # the archive CMake built above (members named exec.c.obj) linked by the same fw.ld
        OTAUP_LIB="$dir/lib/libotaup.a" "$SRC/examples/firmware/build.sh" "$BUILD_ROOT/firmware-lib" "$zsrc"
    fi
}

stage_fuzz() {
    log "libFuzzer (${FUZZ_SECONDS}s for proto, ${FUZZ_SECONDS_OTHER}s for each other target)"
    if ! command -v clang >/dev/null; then
        echo "clang not present: fuzz stage skipped"
        return
    fi
    local dir="$BUILD_ROOT/fuzz"
    cmake -S "$SRC" -B "$dir" -DCMAKE_C_COMPILER=clang -DOTAUP_FUZZ=ON \
        -DOTAUP_BUILD_EXAMPLES=OFF -DOTAUP_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$dir" -j "$JOBS"
    # The targets run JOBS at a time (each libFuzzer run is one process on
    # one core); each one's figures are printed, in order, once all ended.
    local t names=() running=0
    for t in "$dir"/tests/fuzz_*; do
        [ -x "$t" ] || continue
        case "$t" in *_replay) continue ;; esac
        names+=("$(basename "$t")")
    done
    for t in "${names[@]}"; do
        fuzz_one "$dir" "${t#fuzz_}" &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then
            wait -n || true
            running=$((running - 1))
        fi
    done
    wait || true
    local name work failed=()
    for t in "${names[@]}"; do
        name="${t#fuzz_}"; work="$dir/corpus-$name"
        echo "--- fuzz $name"
        grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE" "$work.log" || true
        if [ "$(cat "$work.rc" 2>/dev/null || echo missing)" != 0 ]; then
            tail -40 "$work.log"
            failed+=("$name")
        fi
    done
    [ ${#failed[@]} -eq 0 ] || die "fuzz target(s) ${failed[*]} found a failure (logs: $dir/corpus-NAME.log)"
}

# One bounded libFuzzer run of fuzz_$2 in build dir $1: its log in
# corpus-$2.log, its exit code in corpus-$2.rc.
fuzz_one() {
    local dir="$1" name="$2" work="$1/corpus-$2" secs="$FUZZ_SECONDS_OTHER" rc=0
    [ "$name" = proto ] && secs="$FUZZ_SECONDS"
    rm -rf "$work" "$work.rc" && mkdir -p "$work"
    "$dir/tests/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "$work" "$SRC/tests/fuzz/corpus/$name" >"$work.log" 2>&1 || rc=$?
    echo "$rc" > "$work.rc"
}

# Optional (not in the default run): the whole library and its suites built
# for a big-endian 64-bit host (s390x) and run under qemu-user, to prove the
# byte handling endian-explicit. Installs the s390x cross compiler, qemu-user
# and Check for s390x (Debian multiarch); zlib is Debian's source, cross-built.
# The example programs run through a qemu wrapper; SQLite and mbedTLS are left
# out, so the suites that need them show as not run (README).
stage_bigendian() {
    log "big-endian (s390x under qemu-user): library, programs and suites"
    local dir="$BUILD_ROOT/bigendian" z="$BUILD_ROOT/bigendian-deps"
    if ! command -v s390x-linux-gnu-gcc >/dev/null || ! command -v qemu-s390x >/dev/null ||
        [ ! -f /usr/lib/s390x-linux-gnu/libcheck.a ]; then
        [ "$(id -u)" -eq 0 ] || die "run as root to install the s390x cross compiler, qemu-user and check:s390x"
        dpkg --print-foreign-architectures | grep -qx s390x || dpkg --add-architecture s390x
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-s390x-linux-gnu qemu-user \
            check:s390x libsubunit-dev:s390x >/dev/null
    fi
    local zsrc
    zsrc="$("$SRC/tests/fetch-zlib-source.sh" "$BUILD_ROOT/zlib-src")"
    if [ ! -f "$z/lib/libz.a" ]; then
        rm -rf "$z" "$z.src" && cp -r "$zsrc" "$z.src"
        (cd "$z.src" && CC=s390x-linux-gnu-gcc CFLAGS=-O2 ./configure --static --prefix="$z" >/dev/null &&
            make -j "$JOBS" libz.a >/dev/null && make install >/dev/null)
    fi
    # Check linked statically (qemu-user runs static binaries without a
    # target root); xxHash is header-only, the host's header
    mkdir -p "$z/pc" "$z/include"
    cp /usr/include/check.h /usr/include/check_stdint.h "$z/include/"
    cp /usr/lib/s390x-linux-gnu/libcheck.a /usr/lib/s390x-linux-gnu/libsubunit.a "$z/lib/"
    printf 'Name: check\nDescription: Check, static, s390x\nVersion: 0.15\nLibs: -L%s/lib -lcheck -lsubunit -lm -lrt -lpthread\nCflags: -I%s/include -pthread\n' \
        "$z" "$z" > "$z/pc/check.pc"
    printf 'Name: libxxhash\nDescription: xxHash header\nVersion: 0.8\nLibs:\nCflags:\n' > "$z/pc/libxxhash.pc"
    PKG_CONFIG_LIBDIR="$z/pc" cmake -S "$SRC" -B "$dir" -DCMAKE_C_COMPILER=s390x-linux-gnu-gcc \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOTAUP_WERROR=ON -DZLIB_ROOT="$z" -DOTAUP_WITH_SQLITE=OFF \
        -DOTAUP_WITH_MBEDTLS=OFF -DOTAUP_BUILD_BENCH=OFF -DCMAKE_EXE_LINKER_FLAGS=-static \
        -DCMAKE_CROSSCOMPILING_EMULATOR=qemu-s390x >/dev/null
    cmake --build "$dir" -j "$JOBS" >/dev/null
    local p
    for p in "$dir"/examples/*/*; do
        [ -f "$p" ] && [ -x "$p" ] && head -c 4 "$p" | grep -q ELF || continue
        mv "$p" "$p.s390x"
        printf '#!/bin/sh\nexec qemu-s390x "%s" "$@"\n' "$p.s390x" > "$p"
        chmod +x "$p"
    done
    (cd "$dir" && ctest --output-on-failure -j "$JOBS")
}

for s in "${STAGES[@]}"; do
    case "$s" in
        deps|gcc|sanitize|clang|install|demo|cross|fuzz|bigendian) "stage_$s" ;;
        *) die "unknown stage '$s' (stages: ${ALL_STAGES[*]}; optional: bigendian)" ;;
    esac
    echo "[$s done at $(elapsed)]"
done
log "all stages passed: ${STAGES[*]} ($(elapsed))"
