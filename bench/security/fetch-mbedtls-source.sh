#!/usr/bin/env bash
# Fetch Debian's own mbedTLS source package (for Cortex-M size measurements)
# into DIR and print the path of the unpacked tree. Uses the deb-src entry
# that tests/fetch-zlib-source.sh adds when none exists. Idempotent.
set -euo pipefail
dest="${1:?usage: fetch-mbedtls-source.sh DIR}"
mkdir -p "$dest"
found() { find "$dest" -maxdepth 3 -path '*/library/ecdsa.c' 2>/dev/null | head -1; }
existing="$(found)"
if [ -n "$existing" ]; then
    dirname "$(dirname "$existing")"
    exit 0
fi
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "fetch-mbedtls-source: no Debian sources list found" >&2; exit 1; }
    sed 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/otaup-src.sources
    apt-get update -qq >&2
fi
if [ -z "$(apt-cache showsrc mbedtls 2>/dev/null)" ]; then
    apt-get update -qq >&2
fi
(cd "$dest" && apt-get source -qq mbedtls >&2 2>/dev/null) || (cd "$dest" && apt-get source mbedtls >&2)
existing="$(found)"
[ -n "$existing" ] || { echo "fetch-mbedtls-source: no mbedTLS tree in $dest" >&2; exit 1; }
dirname "$(dirname "$existing")"
