#!/usr/bin/env bash
# Builds the celer container image with podman from a build folder (docs/deploy.md, "Image").
#   scripts/image.sh                 build the image
#   scripts/image.sh --run [ARGS]    build it, then run it on examples/repository (read-only, non-root,
#                                    no capabilities) on localhost:${CELER_HTTP_PORT:-8000}; ARGS go to
#                                    `celer serve` after --model-repository /models
# Environment:
#   CELER_BUILD_DIR      build folder holding celer (default build; a release build)
#   CELER_IMAGE          tag (default localhost/celer:latest, or localhost/celer:debian for the variant)
#   CELER_IMAGE_VARIANT  scratch (default: Containerfile, no shell, ~106 MB) or debian
#                        (Containerfile.debian: Debian 12 minbase with the runtime packages, a shell and apt)
#   CELER_DEBIAN_MIRROR, CELER_DEBIAN_SECURITY_MIRROR  the debian variant's mirrors (default: those
#                        of this machine's apt sources, else deb.debian.org)
#   CELER_IMAGE_CACHE    1 (default): podman keeps each step's image as a cache, so a rebuild reuses the
#                        library layer; 0: no intermediate images (the test, which removes what it makes)
#   CONTAINERS_CONF      podman's settings (default scripts/containers.conf: runc and ulimits, see there)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${CELER_BUILD_DIR:-build}
[[ $build = /* ]] || build=$repo/$build
variant=${CELER_IMAGE_VARIANT:-scratch}
case "$variant" in
  scratch) image=${CELER_IMAGE:-localhost/celer:latest} file=Containerfile ;;
  debian)  image=${CELER_IMAGE:-localhost/celer:debian} file=Containerfile.debian ;;
  *) echo "image.sh: CELER_IMAGE_VARIANT must be scratch or debian, got '$variant'" >&2; exit 1 ;;
esac
run=0
if [[ "${1:-}" == "--run" ]]; then run=1; shift; fi
command -v podman >/dev/null || { echo "image.sh: podman is not installed (scripts/deps.sh --test installs it)" >&2; exit 1; }
export CONTAINERS_CONF=${CONTAINERS_CONF:-$repo/scripts/containers.conf}

[[ -x $build/celer ]] || { echo "image.sh: expected $build/celer; build first (README)" >&2; exit 1; }
version=$(sed -n 's/^project(celer VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
revision=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
ctx=$(mktemp -d "${TMPDIR:-/tmp}/celer-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
start=$(date +%s.%N)

if [[ $variant == scratch ]]; then
  "$repo/scripts/image-root.sh" "$ctx" "$build/celer"
  extra=()
else
  # The base: Debian 12 minbase from debootstrap, imported once and reused (tagged by suite). Only
  # Debian's mirror is reached, here and by the Containerfile's apt-get.
  base=localhost/celer-debian-base:bookworm
  mirror=${CELER_DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null \
                                  | head -1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  security=${CELER_DEBIAN_SECURITY_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian-security\).*/\1/p' \
                                              /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
  security=${security:-http://deb.debian.org/debian-security}
  if ! podman image exists "$base"; then
    command -v debootstrap >/dev/null || { echo "image.sh: the debian variant needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    echo "debootstrap --variant=minbase bookworm from $mirror (once)"
    debootstrap --variant=minbase bookworm "$ctx/base" "$mirror" >/dev/null
    # what a container does not use: apt lists and caches, docs, man pages, locales
    rm -rf "$ctx"/base/var/lib/apt/lists/* "$ctx"/base/var/cache/apt/*.bin "$ctx"/base/var/cache/apt/archives/*.deb \
           "$ctx"/base/usr/share/{doc,man,info,locale}/* "$ctx"/base/var/log/*
    tar -C "$ctx/base" --numeric-owner -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
    rm -rf "$ctx/base"
  fi
  # The runtime packages: those holding the libraries celer names (NEEDED), their dependencies come along.
  pkgs=$(readelf -d "$build/celer" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | while read -r so; do
           path=$(ldd "$build/celer" | awk -v so="$so" '$1 == so { print $3 }')
           # dpkg knows a file under the path its package shipped (/lib or /usr/lib on Debian 12)
           { dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true; } | head -1 | cut -d: -f1
         done | sort -u | tr '\n' ' ')
  [[ -n $pkgs ]] || { echo "image.sh: found no Debian package for celer's libraries" >&2; exit 1; }
  mkdir -p "$ctx/app/usr/bin"
  cp "$build/celer" "$ctx/app/usr/bin/celer"
  extra=(--build-arg "BASE=$base" --build-arg "PACKAGES=$pkgs ca-certificates" --build-arg "MIRROR=$mirror"
         --build-arg "SECURITY_MIRROR=$security")
fi

podman build -q --layers="$([[ ${CELER_IMAGE_CACHE:-1} == 0 ]] && echo false || echo true)" -f "$repo/$file" -t "$image" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  "${extra[@]}" "$ctx" >/dev/null
end=$(date +%s.%N)
size=$(podman image inspect "$image" --format '{{.Size}}')
awk -v i="$image" -v v="$variant" -v t="$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" -v s="$size" \
  'BEGIN { printf "built %s (%s) in %.1f s: %.1f MB uncompressed\n", i, v, t, s / 1e6 }'

if [[ $run == 1 ]]; then
  port=${CELER_HTTP_PORT:-8000}
  echo "serving examples/repository on localhost:$port (Ctrl-C stops it); try:"
  echo "  curl -s localhost:$port/v2/health/ready -w '%{http_code}\\n'"
  echo "  curl -s localhost:$port/v2/models/mlp/infer -d '{\"inputs\":[{\"name\":\"features\",\"shape\":[1,16],\"datatype\":\"FP32\",\"data\":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6]}]}'"
  rm -rf "$ctx"  # exec skips the EXIT trap
  tty=()
  [[ -t 0 ]] && tty=(-it)
  exec podman run --rm "${tty[@]}" --read-only --cap-drop ALL --security-opt no-new-privileges \
    -v "$repo/examples/repository:/models:ro" -p "127.0.0.1:$port:8000" "$image" \
    serve --model-repository /models "$@"
fi
