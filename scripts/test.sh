#!/usr/bin/env bash
# Builds celer twice (release, and debug with AddressSanitizer + UndefinedBehaviorSanitizer), runs
# the whole test suite (unit, ONNX conformance, CLI, real PyTorch models) on both, runs the
# concurrency test and the pipeline and cache end-to-end tests under ThreadSanitizer, then fuzzes
# the ONNX reader and the pipeline inputs for a bounded time. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-60}

echo "== release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== sanitizer build (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCELER_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$jobs"
# the real models are exported once, into the release build's folder
export CELER_REAL_MODELS_DIR="$PWD/build/real-models"
# every ctest test, the end-to-end ones included (test_model_files: a served model's file
# truncated and overwritten in place), runs here against build-asan/celer
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")

echo "== thread sanitizer: one model run from 8 threads at once; the request service in process; shared memory"
echo "   regions acquired by threads while another unregisters them"
cmake -S . -B build-tsan -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread >/dev/null
ninja -C build-tsan -j"$jobs" test_runtime test_service test_s3 test_shm
for t in test_runtime test_service test_shm; do
  CELER_EXAMPLES="$PWD/examples" TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
    "build-tsan/tests/$t"
done
echo "== thread sanitizer: the S3 copy fetching 4 objects at once, against Swift"
TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
  /usr/bin/python3 tests/s3/test_s3_client.py build-tsan/tests/test_s3
echo "== thread sanitizer: the server under the pipeline, cache, hardening, gRPC and shared memory end-to-end tests"
echo "   (requests move between workers; coalesced requests are answered by another request's worker; shutdown under"
echo "   load; regions unregistered while requests use them; API key sets swapped by SIGHUP while requests check them;"
echo "   remote models' calls completed on their client's thread while the upstream stops and restarts)"
ninja -C build-tsan -j"$jobs" celer
for t in test_pipelines test_cache test_cache_redis test_hardening test_grpc test_grpc_abuse test_shared_memory \
         test_api_keys test_remote; do
  TSAN_OPTIONS="halt_on_error=1 suppressions=$PWD/tests/tsan.supp" \
    /usr/bin/python3 "tests/e2e/$t.py" build-tsan/celer examples/repository
done

echo "== fuzzing the ONNX reader, the pipeline inputs, the KServe decoders and the gRPC framing (${FUZZ_SECONDS}s and their own shares)"
tests/fuzz/run_fuzz.sh "$FUZZ_SECONDS"
