#!/bin/sh
# Packs the library's objects into libceler.a, the library a user links: one relocatable object
# (ld -r resolves every reference between the objects inside it), whose global symbols are then
# localized except those named in the public headers (scripts/public_names.sh). Internal
# functions stay callable across src/ without being exported; references to other libraries
# (oneDNN, OpenMP, libc, ...) stay undefined. Run by the build (CMakeLists.txt).
# usage: public_lib.sh OUT.a SRC_DIR CC LD OBJCOPY AR OBJECT...
set -eu
out=$1 src=$2 cc=$3 ld=$4 objcopy=$5 ar=$6
shift 6
"$(dirname "$0")/public_names.sh" "$src" "$cc" >"$out.names"
"$ld" -r -o "$out.o" "$@"
"$objcopy" --keep-global-symbols="$out.names" "$out.o"
rm -f "$out"
"$ar" rcs "$out" "$out.o"
rm -f "$out.o"
