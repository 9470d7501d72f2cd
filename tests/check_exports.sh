#!/bin/sh
# libceler.a exports only what the public headers declare: fails naming every defined global
# symbol that is not an identifier of a public header (scripts/public_names.sh), and every
# undefined reference to a name the library defines itself (a reference left unresolved when its
# definition was made local). Undefined references to other libraries are expected.
# usage: check_exports.sh LIBCELER.A SRC_DIR [CC]
set -eu
lib=$1 src=$2 cc=${3:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$(dirname "$0")/../scripts/public_names.sh" "$src" "$cc" >"$tmp/public"
nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u >"$tmp/exported"
nm --defined-only "$lib" | awk 'NF == 3 { print $3 }' | sort -u >"$tmp/defined"
nm -u "$lib" | awk '{ print $NF }' | sort -u >"$tmp/undefined"
fail=0
if [ ! -s "$tmp/exported" ]; then
    echo "check_exports: $lib exports nothing" >&2
    fail=1
fi
internal=$(comm -23 "$tmp/exported" "$tmp/public")
if [ -n "$internal" ]; then
    echo "check_exports: $lib exports names no public header declares (make them static, or declare them in" >&2
    echo "the module's public header if users need them):" >&2
    echo "$internal" | sed 's/^/  /' >&2
    fail=1
fi
dangling=$(comm -12 "$tmp/undefined" "$tmp/defined")
if [ -n "$dangling" ]; then
    echo "check_exports: $lib references names it defines but does not resolve:" >&2
    echo "$dangling" | sed 's/^/  /' >&2
    fail=1
fi
[ "$fail" = 0 ] && echo "check_exports: $(wc -l <"$tmp/exported") exported symbols, all declared in public headers"
exit "$fail"
