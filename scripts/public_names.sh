#!/bin/sh
# Prints, one a line, every identifier of the public headers: the header named after its folder
# (src/base/base.h, src/server/server.h, ...). libceler.a keeps global only the symbols named
# here (every other header is internal, and its functions local to the library); the build
# (CMakeLists.txt) and tests/check_exports.sh both read this list, so it cannot drift from the
# headers. The headers go through the C preprocessor (comments dropped, macro definitions kept
# with -dD) and only the lines that come from them are read, not those of system headers.
# usage: public_names.sh SRC_DIR [CC]
set -eu
src=$1
cc=${2:-cc}
files=""
includes=""
for d in "$src"/*/; do
    m=$(basename "$d")
    [ -f "$src/$m/$m.h" ] || continue
    files="$files
\"$src/$m/$m.h\""
    includes="$includes#include \"$m/$m.h\"
"
done
printf '%s' "$includes" | "$cc" -E -dD -I"$src" -x c - |
    awk -v files="$files" '
        BEGIN { n = split(files, f, "\n"); for (i = 1; i <= n; i++) public[f[i]] = 1 }
        /^# [0-9]+ "/ { keep = ($3 in public); next }
        keep' |
    grep -oE '[A-Za-z_][A-Za-z0-9_]*' | sort -u
