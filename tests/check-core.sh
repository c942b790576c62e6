#!/bin/sh
# Fails if any terminal-side object (lib/core) references the heap, stdio,
# OS calls or soft-float helpers. Arguments: the object files.
set -eu
bad='^(malloc|calloc|realloc|free|printf|fprintf|sprintf|snprintf|puts|fopen|fwrite|fread|open|read|write|close|time|clock_gettime|gettimeofday|sleep|usleep|abort|exit|__aeabi_[dfi]2|__aeabi_[df]add|__aeabi_[df]mul|__aeabi_[df]div|__.*sf[23]|__.*df[23])$'
status=0
for obj in "$@"; do
    for sym in $(nm -u "$obj" | awk '{print $2}'); do
        if printf '%s\n' "$sym" | grep -Eq "$bad"; then
            echo "check-core: $(basename "$obj") uses forbidden symbol $sym" >&2
            status=1
        fi
    done
done
[ $status -eq 0 ] && echo "check-core: $# terminal objects free of heap, stdio, OS and float"
exit $status
