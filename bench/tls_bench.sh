#!/usr/bin/env bash
# HTTPS against plain HTTP on the same models, side by side in one run (issue 20's target: HTTPS
# within 10% of plain at concurrency 64 with keep-alive). One command:
#
#   bench/tls_bench.sh
#
# Builds celer (Release, BENCH_BUILD_DIR, default build-bench) if needed, writes the benchmark
# models (bench/make_bench_models.py), makes a throwaway CA and a P-256 server certificate with
# openssl, and starts two servers with the same flags: one plain, one with --tls-cert/--tls-key.
# Then, for each model, BENCH_ROUNDS rounds (default 3) of wrk (keep-alive, -t2) at concurrency
# BENCH_CONCURRENCY (default 64) for BENCH_SECONDS each (default 10) alternate plain and HTTPS, the
# order swapped every round, so a drift of the shared machine falls on both. Prints one row per
# model: the median requests/s of each, HTTPS / plain, p50/p99 and server CPU per request.
# The same for gRPC ModelInfer, h2c against TLS (ALPN h2), with h2load (4 connections x 16
# streams; Debian nghttp2-client), as bench/grpc_bench.sh loads it.
# Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS, BENCH_CONCURRENCY,
# BENCH_PORT_BASE (18451: plain HTTP, +1 HTTPS, +2 h2c, +3 gRPC over TLS), BENCH_BUILD_DIR, and
# BENCH_PIN=1: the servers on CPU 0 and the clients on CPU 1, so that the server's core is the one
# saturated and the ratio is the server's own (by default the clients share both cores, and
# their TLS costs count). Raw output: BUILD/bench-tls/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18451}
P_PLAIN=$BASE P_TLS=$((BASE + 1)) P_H2C=$((BASE + 2)) P_GTLS=$((BASE + 3))
ROUNDS=${BENCH_ROUNDS:-3}
C=${BENCH_CONCURRENCY:-64}
SERVER_PIN= CLIENT_PIN= PINNED=""
[[ ${BENCH_PIN:-0} == 1 ]] && SERVER_PIN="taskset -c 0" CLIENT_PIN="taskset -c 1" PINNED=", servers pinned to CPU 0 and clients to CPU 1"
RUN=$BUILD/bench-tls
RESULTS=$RUN/results.tsv
GRESULTS=$RUN/grpc.tsv

log() { echo "bench: $*" >&2; }

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
command -v h2load >/dev/null || missing+=(nghttp2-client)
install_missing "${missing[@]}"

build_celer tls-bench
rm -rf "$RUN" && mkdir -p "$RUN"
$PY bench/make_bench_models.py "$BUILD" >/dev/null
BODIES=$BUILD/bodies
$PY bench/grpc_bodies.py "$RUN" identity identity x y 1 4
$PY bench/grpc_bodies.py "$RUN" mlp mlp features output 1 1000

# ---- a throwaway CA and server certificate (P-256, for 127.0.0.1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$RUN/ca.key" -out "$RUN/ca.pem" \
  -days 2 -subj "/CN=celer bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$RUN/server.key" -out "$RUN/server.csr" \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$RUN/ext.cnf"
openssl x509 -req -in "$RUN/server.csr" -CA "$RUN/ca.pem" -CAkey "$RUN/ca.key" -set_serial 1 -days 2 \
  -extfile "$RUN/ext.cnf" -out "$RUN/server.pem" 2>/dev/null

for p in $P_PLAIN $P_TLS $P_H2C $P_GTLS; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

start() {  # start NAME PORT GRPC_PORT FLAGS...: sets SERVER_PID
  local name=$1 port=$2 grpc=$3 scheme=http i
  shift 3
  (($#)) && scheme=https
  $SERVER_PIN "$BUILD/celer" serve --model-repository "$BUILD/bench-repo" --http-address $HOST --http-port "$port" \
    --grpc-address $HOST --grpc-port "$grpc" --quiet "$@" >"$RUN/$name.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  for ((i = 0; i < 600; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$name exited at start:"; tail -n 30 "$RUN/$name.log" >&2; exit 1; }
    curl -sf --cacert "$RUN/ca.pem" -o /dev/null "$scheme://$HOST:$port/v2/health/ready" && return 0
    sleep 0.1
  done
  log "$name not ready after 60 s"; exit 1
}

START=$(date -u '+%Y-%m-%d %H:%M UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
start plain $P_PLAIN $P_H2C
PLAIN=$SERVER_PID
start https $P_TLS $P_GTLS --tls-cert "$RUN/server.pem" --tls-key "$RUN/server.key"
HTTPS=$SERVER_PID
curl -sf --cacert "$RUN/ca.pem" -o /dev/null -X POST --data-binary @"$BODIES/identity.json" \
  "https://$HOST:$P_TLS/v2/models/identity/infer" || { log "HTTPS inference failed"; exit 1; }

one() {  # one SERVER PID URL BODY MODEL ROUND: one wrk run, a line in RESULTS
  printf '%s\t%s\t%s\t%s\n' "$1" "$5" "$6" "$(wrk_run "$1-$5-r$6" "$2" "$3" "$4" "$C")" >>"$RESULTS"
}

for model in identity mlp; do
  body=$BODIES/identity.json
  [[ $model == mlp ]] && body=$BODIES/celer_mlp.json
  u_plain="http://$HOST:$P_PLAIN/v2/models/$model/infer" u_tls="https://$HOST:$P_TLS/v2/models/$model/infer"
  log "$model: warm-up ${WARMUP}s each, then $ROUNDS rounds of ${DURATION}s plain / HTTPS at concurrency $C"
  wrk -t1 -c8 -d"${WARMUP}s" -s bench/post.lua "$u_plain" -- "$body" >/dev/null 2>&1 || true
  wrk -t1 -c8 -d"${WARMUP}s" -s bench/post.lua "$u_tls" -- "$body" >/dev/null 2>&1 || true
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
      one plain "$PLAIN" "$u_plain" "$body" "$model" "$r"; one https "$HTTPS" "$u_tls" "$body" "$model" "$r"
    else
      one https "$HTTPS" "$u_tls" "$body" "$model" "$r"; one plain "$PLAIN" "$u_plain" "$body" "$model" "$r"
    fi
  done
done

# gRPC: h2load_run SERVER PID URL MODEL ROUND: a line "server model round req/s cpu_us_per_req errors"
GRPC_H=(-H 'content-type: application/grpc' -H 'te: trailers')
h2load_run() {
  local out cpu0 cpu1 n
  cpu0=$(tree_cpu_ms "$2")
  out=$($CLIENT_PIN h2load -D "$DURATION" -c 4 -m $((C / 4)) -d "$RUN/$4.grpc" "${GRPC_H[@]}" "$3" 2>&1 || true)
  cpu1=$(tree_cpu_ms "$2")
  echo "$out" >"$RUN/h2load-$1-$4-r$5.txt"
  n=$(awk '/^requests:/{print $8}' <<<"$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$4" "$5" "$(awk '/^finished in/{print $4}' <<<"$out")" \
    "$($PY -c "print(round(($cpu1 - $cpu0) * 1000 / max(${n:-0}, 1), 1))")" \
    "$(awk '/^status codes:/{print $5 + $7 + $9}' <<<"$out")" >>"$GRESULTS"
}
for model in identity mlp; do
  u_h2c="http://$HOST:$P_H2C/inference.GRPCInferenceService/ModelInfer"
  u_gtls="https://$HOST:$P_GTLS/inference.GRPCInferenceService/ModelInfer"
  log "gRPC $model: $ROUNDS rounds of ${DURATION}s h2c / TLS, 4 connections x $((C / 4)) streams"
  h2load -D "$WARMUP" -c 4 -m $((C / 4)) -d "$RUN/$model.grpc" "${GRPC_H[@]}" "$u_h2c" >/dev/null 2>&1 || true
  h2load -D "$WARMUP" -c 4 -m $((C / 4)) -d "$RUN/$model.grpc" "${GRPC_H[@]}" "$u_gtls" >/dev/null 2>&1 || true
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
      h2load_run h2c "$PLAIN" "$u_h2c" "$model" "$r"; h2load_run tls "$HTTPS" "$u_gtls" "$model" "$r"
    else
      h2load_run tls "$HTTPS" "$u_gtls" "$model" "$r"; h2load_run h2c "$PLAIN" "$u_h2c" "$model" "$r"
    fi
  done
done

echo
echo "celer HTTPS vs plain HTTP, $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags, --quiet), GnuTLS" \
  "$(dpkg-query -W -f='${Version}' libgnutls30 2>/dev/null || echo '?'), P-256 certificate, wrk -t2 -c$C keep-alive" \
  "(OpenSSL client) on the same machine${PINNED}, ${DURATION}s x $ROUNDS rounds alternating; load average before: $LOADAVG"
echo
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    server, model, rnd, req, sec, p50, p99, herr, serr, rss, cpu = line.rstrip("\n").split("\t")
    if req == "-":
        continue
    rows.setdefault((model, server), []).append((int(req) / float(sec), float(p50), float(p99),
                                                 int(herr) + int(serr), int(cpu) * 1000 / max(int(req), 1)))
print("| model | plain req/s (runs) | HTTPS req/s (runs) | HTTPS / plain | p50 ms plain / HTTPS | p99 ms plain / HTTPS "
      "| server CPU us/req plain / HTTPS | errors |")
print("|---|---|---|---|---|---|---|---|")
for model in ("identity", "mlp"):
    a, b = rows.get((model, "plain"), []), rows.get((model, "https"), [])
    if not a or not b:
        continue
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    runs = lambda xs: ", ".join(f"{x[0]:.0f}" for x in xs)  # noqa: E731
    print(f"| {model} | {med(a, 0):.0f} ({runs(a)}) | {med(b, 0):.0f} ({runs(b)}) | {med(b, 0) / med(a, 0):.3f} "
          f"| {med(a, 1):.2f} / {med(b, 1):.2f} | {med(a, 2):.2f} / {med(b, 2):.2f} | {med(a, 4):.0f} / {med(b, 4):.0f} "
          f"| {sum(x[3] for x in a)} / {sum(x[3] for x in b)} |")
EOF
echo
echo "gRPC ModelInfer, h2load -c4 -m$((C / 4)) (ALPN h2 over TLS vs h2c), medians of $ROUNDS rounds:"
echo
$PY - "$GRESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    server, model, rnd, rps, cpu, err = line.rstrip("\n").split("\t")
    if rps:
        rows.setdefault((model, server), []).append((float(rps), float(cpu), int(err or 0)))
print("| model | h2c req/s (runs) | TLS req/s (runs) | TLS / h2c | server CPU us/req h2c / TLS | non-200 |")
print("|---|---|---|---|---|---|")
for model in ("identity", "mlp"):
    a, b = rows.get((model, "h2c"), []), rows.get((model, "tls"), [])
    if not a or not b:
        continue
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    runs = lambda xs: ", ".join(f"{x[0]:.0f}" for x in xs)  # noqa: E731
    print(f"| {model} | {med(a, 0):.0f} ({runs(a)}) | {med(b, 0):.0f} ({runs(b)}) | {med(b, 0) / med(a, 0):.3f} "
          f"| {med(a, 1):.0f} / {med(b, 1):.0f} | {sum(x[2] for x in a)} / {sum(x[2] for x in b)} |")
EOF
