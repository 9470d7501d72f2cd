#!/usr/bin/env bash
# Installs what celer needs from Debian 12 packages; idempotent (does nothing when all are there).
#   scripts/deps.sh          build dependencies
#   scripts/deps.sh --test   build + test dependencies (conformance data, PyTorch, clang for fuzzing,
#                            Node.js for the gRPC client, h2load, python3-hpack for the gRPC abuse
#                            test, python3-grpcio for the health test, OpenStack Swift with s3api and
#                            boto3 for the S3 tests, Chromium for the /docs page test, podman for
#                            the container image test)
set -euo pipefail
pkgs=(cmake ninja-build pkg-config gcc libc6-dev libdnnl-dev libopenblas-dev libmicrohttpd-dev libyaml-dev libjpeg62-turbo-dev libpng-dev libxxhash-dev libhiredis-dev libnghttp2-dev libcurl4-gnutls-dev zlib1g-dev libgnutls28-dev)
if [[ "${1:-}" == "--test" ]]; then
  pkgs+=(libcmocka-dev libonnx-testdata clang libclang-rt-14-dev libomp-14-dev
         python3 python3-numpy python3-onnx python3-torch python3-torchvision curl redis-server
         nghttp2-client python3-hpack                                 # the gRPC abuse test's HPACK decoder
         python3-grpcio python3-grpc-tools python3-protobuf grpc-proto  # the gRPC health test's stub
         swift swift-proxy swift-account swift-container swift-object python3-boto3   # S3 with signature checks
         faketime                                                                    # a skewed clock against it
         openssl                                                                     # the TLS test's certificates and s_client
         chromium                                                                    # the /docs page test's headless browser
         podman runc netavark aardvark-dns iptables ca-certificates)                 # the image test (runc: scripts/containers.conf)
  # the gRPC, OpenAPI and /docs tests' npm packages (@grpc/grpc-js, swagger-parser, swagger-ui-dist...,
  # installed by the tests into a cache folder: tests/e2e/node_cache.py); a Node.js
  # that ships its own npm (the machine image's) is kept, Debian's otherwise
  command -v npm >/dev/null || pkgs+=(nodejs npm)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO=sudo
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
