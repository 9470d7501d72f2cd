#!/usr/bin/env bash
# Assembles the root folder of the celer image (Containerfile, FROM scratch) from this machine's
# build: no shell, no package manager, only what the program loads.
#   scripts/image-root.sh ROOT [CELER_BIN]      (CELER_BIN: build/celer by default)
# ROOT is emptied first. It gets two trees, copied by the Containerfile as two layers so that a
# code change rebuilds only the top one:
#   ROOT/base   the loader, every shared library `ldd` lists (copied under the soname ldd resolved,
#               in the folder it resolved it in), etc/ld.so.conf + etc/ld.so.cache for the folders
#               outside the loader's defaults (OpenBLAS's, reached through Debian's alternatives),
#               passwd/group with the user celer (65532), nsswitch.conf, the CA bundle, /tmp
#   ROOT/app    usr/bin/celer
# What ldd cannot see (dlopen) was checked with strace: see docs/deploy.md, "Image".
set -euo pipefail
root=${1:?usage: image-root.sh ROOT [CELER_BIN]}
bin=${2:-build/celer}
[[ -x "$bin" ]] || { echo "image-root.sh: expected an executable celer at $bin (build first)" >&2; exit 1; }
case "$root" in /|/usr|/etc|"") echo "image-root.sh: refusing ROOT=$root" >&2; exit 1 ;; esac

rm -rf "$root"
base=$root/base app=$root/app
mkdir -p "$base"/{etc,tmp,lib64} "$app/usr/bin"
chmod 1777 "$base/tmp"

# A sanitizer build's runtime does not belong in an image: ask for a release build.
if ldd "$bin" | grep -Eq 'lib(a|ub|t)san'; then
  echo "image-root.sh: $bin is a sanitizer build; build a release one (CMAKE_BUILD_TYPE=Release)" >&2
  exit 1
fi

# Libraries: "soname => /path (addr)". The folder is resolved (/lib is a link to /usr/lib on Debian 12)
# so that each library lives once, where ld.so.conf says; cp -L follows libfoo.so.N -> libfoo.so.N.M.
dirs=()
while read -r soname path; do
  dir=$(dirname "$(readlink -f "$path")")
  mkdir -p "$base$dir"
  cp -L "$path" "$base$dir/$soname"
  [[ " ${dirs[*]-} " == *" $dir "* ]] || dirs+=("$dir")
done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
[[ ${#dirs[@]} -gt 0 ]] || { echo "image-root.sh: ldd listed no libraries for $bin" >&2; exit 1; }

# The loader, at the path the program names (PT_INTERP).
interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
mkdir -p "$base$(dirname "$interp")"
cp -L "$interp" "$base$interp"

# Debian's OpenBLAS is in openblas-pthread/, which the host finds through ld.so.conf.d (alternatives):
# list every folder used and build the cache with the root's own paths.
printf '%s\n' "${dirs[@]}" > "$base/etc/ld.so.conf"
ldconfig -r "$base"

# A non-root user for USER 65532 (getpwuid finds a name; HOME is /tmp, the one writable folder).
printf 'root:x:0:0:root:/root:/sbin/nologin\nceler:x:65532:65532:celer:/tmp:/sbin/nologin\n' > "$base/etc/passwd"
printf 'root:x:0:\nceler:x:65532:\n' > "$base/etc/group"
# Name lookups (Redis, S3 hosts) with glibc's built-in files and dns, /etc/hosts first as on Debian;
# without this file glibc asks DNS first.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' > "$base/etc/nsswitch.conf"

# CA certificates for S3 over HTTPS: Debian's libcurl-gnutls is built with --with-ca-path=/etc/ssl/certs
# (it loads every file there) and GnuTLS's system trust is /etc/ssl/certs/ca-certificates.crt: the bundle
# alone, at that path, serves both. AWS_CA_BUNDLE still overrides it.
ca=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca ]] || { echo "image-root.sh: expected the CA bundle $ca (Debian package ca-certificates)" >&2; exit 1; }
mkdir -p "$base/etc/ssl/certs"
cp -L "$ca" "$base$ca"

cp "$bin" "$app/usr/bin/celer"

# Reproducible-ish layers: fixed modes, no host owner (podman copies as root unless --chown).
chmod -R u=rwX,go=rX "$base/etc" "$base/usr" "$base/lib64" "$app"
chmod 1777 "$base/tmp"
chmod 755 "$app/usr/bin/celer"
echo "image root: $(du -sm "$base" | cut -f1) MB libraries and files, $(du -sm "$app" | cut -f1) MB celer, in $root"
