#!/usr/bin/env bash
# gRPC ModelInfer against HTTP's binary infer on the same celer, side by side in one run:
#
#   bench/grpc_bench.sh
#
# One celer serves the benchmark repository (bench/make_bench_models.py) on both ports. For the
# identity model (1x4 FP32) and the recommendation MLP (1x1000 FP32), at concurrency 1, 8 and 64,
# each round loads gRPC then HTTP for BENCH_SECONDS (default 10) with the same client, h2load
# (Debian nghttp2-client): gRPC as 1 connection x 1 or 8 streams, or 4 x 16; HTTP/1.1 (--h1) as 1,
# 8 or 64 connections, as HTTP clients keep one request in flight per connection. The server's CPU
# time per request comes from /proc. h2load counts HTTP statuses only, so the script first checks
# one gRPC answer's grpc-status with nghttp, and loads HTTP once more with wrk (bench/post.lua), a
# second client, to show h2load's HTTP figures can be trusted. Env: BENCH_SECONDS, BENCH_ROUNDS (2),
# BENCH_PORT_BASE (18471: HTTP, +1 gRPC), BENCH_BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18471}
P_HTTP=$BASE P_GRPC=$((BASE + 1))
ROUNDS=${BENCH_ROUNDS:-2}
RUN=$BUILD/grpc-bench-run
log() { echo "bench: $*" >&2; }

missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v wrk >/dev/null || missing+=(wrk)
install_missing "${missing[@]}"
build_celer grpc-bench
rm -rf "$RUN" && mkdir -p "$RUN"
$PY bench/make_bench_models.py "$BUILD" >/dev/null
$PY bench/grpc_bodies.py "$RUN" identity identity x y 1 4
$PY bench/grpc_bodies.py "$RUN" mlp mlp features output 1 1000
for p in $P_HTTP $P_GRPC; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

"$BUILD/celer" serve --model-repository "$BUILD/bench-repo" --http-address $HOST --http-port $P_HTTP \
  --grpc-address $HOST --grpc-port $P_GRPC --quiet >"$RUN/celer.log" 2>&1 &
CELER=$!; PIDS+=("$CELER")
wait_ready "$CELER" "http://$HOST:$P_HTTP/v2/health/ready" celer "$RUN/celer.log"

GRPC_H=(-H 'content-type: application/grpc' -H 'te: trailers')
for m in identity mlp; do
  status=$(nghttp -v -d "$RUN/$m.grpc" "${GRPC_H[@]}" "http://$HOST:$P_GRPC/inference.GRPCInferenceService/ModelInfer" 2>&1 |
           grep -a -o 'grpc-status: [0-9]*' | head -1)
  [[ "$status" == "grpc-status: 0" ]] || { log "$m: gRPC ModelInfer did not answer grpc-status 0 ($status)"; exit 1; }
done

# h2load_run KIND MODEL CONCURRENCY: prints "requests req/s cpu_us_per_request"
h2load_run() {
  local kind=$1 m=$2 c=$3 out cpu0 cpu1 n rps
  local -a args
  if [[ $kind == grpc ]]; then
    if ((c >= 64)); then args=(-c 4 -m $((c / 4))); else args=(-c 1 -m "$c"); fi
    args+=(-d "$RUN/$m.grpc" "${GRPC_H[@]}" "http://$HOST:$P_GRPC/inference.GRPCInferenceService/ModelInfer")
  else
    args=(--h1 -c "$c" -d "$RUN/$m.http" -H "Inference-Header-Content-Length: $(cat "$RUN/$m.hlen")"
          "http://$HOST:$P_HTTP/v2/models/$m/infer")
  fi
  h2load -D "$WARMUP" "${args[@]}" >/dev/null 2>&1 || true
  cpu0=$(tree_cpu_ms "$CELER")
  out=$(h2load -D "$DURATION" "${args[@]}" 2>&1)
  cpu1=$(tree_cpu_ms "$CELER")
  echo "$out" >"$RUN/h2load-$kind-$m-$c.txt"
  n=$(awk '/^requests:/{print $8}' <<<"$out")
  rps=$(awk '/^finished in/{print $4}' <<<"$out")
  local bad=$(awk '/^status codes:/{print $5 + $7 + $9}' <<<"$out")
  [[ "${bad:-0}" == 0 ]] || log "$kind $m c=$c: $bad non-2xx answers (see $RUN)"
  echo "$n $rps $($PY -c "print(round(($cpu1 - $cpu0) * 1000 / max($n, 1), 1))")"
}

echo "celer $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores shared with the client;" \
  "$DURATION s per row, $ROUNDS rounds; lscpu: $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2}')"
printf '%-9s %-5s %5s %10s %11s %10s %11s %9s %9s\n' model round conc grpc_req/s grpc_cpu_us http_req/s http_cpu_us \
  rps_ratio cpu_ratio
for m in identity mlp; do
  for ((r = 1; r <= ROUNDS; r++)); do
    for c in "${CONCURRENCY[@]}"; do
      read -r _ g_rps g_cpu <<<"$(h2load_run grpc "$m" "$c")"
      read -r _ h_rps h_cpu <<<"$(h2load_run http "$m" "$c")"
      printf '%-9s %-5s %5s %10.0f %11s %10.0f %11s %9s %9s\n' "$m" "$r" "$c" "$g_rps" "$g_cpu" "$h_rps" "$h_cpu" \
        "$($PY -c "print(round($g_rps / max($h_rps, 1e-9), 2))")" "$($PY -c "print(round($g_cpu / max($h_cpu, 1e-9), 2))")"
    done
  done
done

# the second client: wrk on the same HTTP requests, to check h2load's HTTP figures
echo
echo "HTTP with a second client (wrk, bench/post.lua), same requests:"
for m in identity mlp; do
  for c in "${CONCURRENCY[@]}"; do
    line=$(wrk -t$((c > 1 ? 2 : 1)) -c "$c" -d"${DURATION}s" -s bench/post.lua \
           -H "Inference-Header-Content-Length: $(cat "$RUN/$m.hlen")" "http://$HOST:$P_HTTP/v2/models/$m/infer" \
           -- "$RUN/$m.http" 2>&1 | grep BENCH || true)
    echo "  $m c=$c: $(awk '{split($2, n, "="); split($3, t, "="); printf "%.0f req/s", n[2] / t[2]}' <<<"$line") ($line)"
  done
done
echo "rows: rps_ratio = gRPC/HTTP requests per second; cpu_ratio = gRPC/HTTP server CPU per request (issue 14's targets: identity rps_ratio >= 1.2, cpu_ratio <= 1)"
