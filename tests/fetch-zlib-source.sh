#!/usr/bin/env bash
# Fetch Debian's own zlib source package (for cross builds) into DIR and
# print the path of the unpacked source tree. Adds a deb-src entry for the
# machine's Debian sources when none exists. Idempotent.
set -euo pipefail
dest="${1:?usage: fetch-zlib-source.sh DIR}"
mkdir -p "$dest"
existing="$(find "$dest" -maxdepth 2 -name zlib.h -path '*zlib-*' 2>/dev/null | head -1)"
if [ -n "$existing" ]; then
    dirname "$existing"
    exit 0
fi
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "fetch-zlib-source: no Debian sources list found" >&2; exit 1; }
    sed 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/otaup-src.sources
    apt-get update -qq >&2
fi
if ! apt-cache showsrc zlib >/dev/null 2>&1 || [ -z "$(apt-cache showsrc zlib 2>/dev/null)" ]; then
    apt-get update -qq >&2
fi
(cd "$dest" && apt-get source -qq zlib >&2 2>/dev/null) || (cd "$dest" && apt-get source zlib >&2)
dirname "$(find "$dest" -maxdepth 2 -name zlib.h -path '*zlib-*' | head -1)"
