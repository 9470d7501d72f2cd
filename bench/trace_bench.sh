#!/usr/bin/env bash
# What tracing costs: requests/s of the mlp example (one row of 16 features, KServe v2 JSON) with
# tracing off and with every request traced (--trace-rate 1, spans posted over OTLP/HTTP, protobuf
# by default, to a receiver on loopback, nginx, that takes them and answers 200), side by side in
# one run: a celer server per configuration, loaded in turn with wrk (bench/post.lua) at
# concurrency 64 with keep-alive, ROUNDS times each, alternating, so that drift of the shared
# machine hits all alike. Prints each run,
# the medians and their ratio, the server's CPU time per request (user + system from /proc, the
# exporter thread included: steadier than requests/s on a machine others share), and celer's span
# counters (exported, dropped, failed).
#
#   bench/trace_bench.sh                 # CELER_BIN (default build/celer), BENCH_SECONDS (10), ROUNDS (3)
#   TRACE_RATE=1000 bench/trace_bench.sh # the traced server at another rate (Triton's default: 1 in 1000)
#   OTLP_PROTOCOL=http/json bench/trace_bench.sh  # the traced server posts JSON (default http/protobuf)
#   OTLP_PROTOCOL="http/protobuf http/json" bench/trace_bench.sh  # one traced server per protocol, in
#                                        # the same alternation: off, protobuf, json, off, ... (not with TOGETHER)
#   TOGETHER=1 bench/trace_bench.sh      # both servers loaded at once (one wrk each, -t1): whatever
#                                        # else the machine runs hits both in the same seconds, so the
#                                        # CPU per request compares closely; the nginx receiver's CPU
#                                        # is then taken from both, so requests/s understate the cost
#
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CELER=${CELER_BIN:-$ROOT/build/celer}
SECS=${BENCH_SECONDS:-10}
ROUNDS=${ROUNDS:-3}
CONC=${BENCH_CONCURRENCY:-64}
OUT=$(mktemp -d "${TMPDIR:-/tmp}/celer-trace-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$OUT"
}
trap cleanup EXIT
log() { echo "trace-bench: $*" >&2; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# the receiver: nginx on loopback, one worker, answering every POST 200 (it reads and discards the
# body): the cheapest receiver there is, so that the run measures celer's cost of tracing, not a
# collector's sharing its cores. The spans are counted by celer's own counters.
P_RECV=$(free_port)
mkdir -p "$OUT/nginx/logs"
cat >"$OUT/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log $OUT/nginx/logs/error.log;
pid $OUT/nginx/nginx.pid;
daemon off;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $OUT/nginx/body;
  server {
    listen 127.0.0.1:$P_RECV;
    client_max_body_size 64m;
    location / { return 200 '{}'; }
  }
}
EOF
nginx -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" &
PIDS+=($!)

start() {  # start PORT ARGS...: a celer server on the example repository; waits until it is live
  local port=$1
  shift
  "$CELER" serve --model-repository examples/repository --http-address 127.0.0.1 --http-port "$port" --grpc-port 0 \
    --quiet "$@" >"$OUT/celer-$port.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && return 0; sleep 0.1; done
  cat "$OUT/celer-$port.log"
  exit 1
}
P_OFF=$(free_port)
start "$P_OFF"
PID_OFF=$LAST_PID
read -r -a PROTOS <<<"${OTLP_PROTOCOL:-http/protobuf}"
P_ONS=() PID_ONS=()
for proto in "${PROTOS[@]}"; do
  P_ON=$(free_port)
  start "$P_ON" --trace-otlp-url "http://127.0.0.1:$P_RECV/v1/traces" --trace-rate "${TRACE_RATE:-1}" \
    --trace-otlp-protocol "$proto"
  P_ONS+=("$P_ON") PID_ONS+=("$LAST_PID")
done
P_ON=${P_ONS[0]} PID_ON=${PID_ONS[0]}

/usr/bin/python3 -c 'import json; print(json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.25] * 16}]}))' >"$OUT/body.json"
curl -sf -D "$OUT/h" -o /dev/null -H 'Content-Type: application/json' --data-binary @"$OUT/body.json" \
  "http://127.0.0.1:$P_ON/v2/models/mlp/infer"
grep -qi '^traceparent: 00-' "$OUT/h" || { log "the traced server answered no traceparent"; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, in clock ticks
exporter_ticks() {  # exporter_ticks PID: the same, of its exporter thread (named celer-trace) alone
  local t
  for t in /proc/"$1"/task/*; do
    if [ "$(cat "$t/comm")" = celer-trace ]; then awk '{print $14 + $15}' "$t/stat"; fi
  done
}
run() {  # run PORT PID: one wrk run; prints requests/s, p99 ms and the server's CPU microseconds per request
  local line t0 t1
  t0=$(cpu_ticks "$2")
  line=$(wrk -t2 -c"$CONC" -d"${SECS}s" -s bench/post.lua "http://127.0.0.1:$1/v2/models/mlp/infer" -- "$OUT/body.json" |
    grep '^BENCH')
  t1=$(cpu_ticks "$2")
  echo "$line" | /usr/bin/python3 -c 'import os, sys; d=dict(kv.split("=") for kv in sys.stdin.read().split()[1:]);
assert int(d["http_errors"]) == 0 and int(d["socket_errors"]) == 0, d
ticks = ('"$t1"' - '"$t0"') / os.sysconf("SC_CLK_TCK")
print("%.0f %s %.2f" % (int(d["requests"]) / float(d["seconds"]), d["p99_ms"], 1e6 * ticks / int(d["requests"])))'
}

metric() { curl -sf "http://127.0.0.1:${2:-$P_ON}/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# warm them up
for port in "$P_OFF" "${P_ONS[@]}"; do
  wrk -t2 -c"$CONC" -d2s -s bench/post.lua "http://127.0.0.1:$port/v2/models/mlp/infer" -- "$OUT/body.json" >/dev/null
done
X0=() S0=()
for k in "${!P_ONS[@]}"; do
  X0+=("$(exporter_ticks "${PID_ONS[$k]}")") S0+=("$(metric celer_trace_spans_exported_total "${P_ONS[$k]}")")
done
run_both() {  # one round with both servers loaded at once: the lines of run, off then on
  local a b t0a t0b t1a t1b
  t0a=$(cpu_ticks "$PID_OFF") t0b=$(cpu_ticks "$PID_ON")
  wrk -t1 -c"$CONC" -d"${SECS}s" -s bench/post.lua "http://127.0.0.1:$P_OFF/v2/models/mlp/infer" -- "$OUT/body.json" \
    >"$OUT/wrk-off" &
  a=$!
  wrk -t1 -c"$CONC" -d"${SECS}s" -s bench/post.lua "http://127.0.0.1:$P_ON/v2/models/mlp/infer" -- "$OUT/body.json" \
    >"$OUT/wrk-on" &
  b=$!
  wait "$a" "$b"
  t1a=$(cpu_ticks "$PID_OFF") t1b=$(cpu_ticks "$PID_ON")
  for x in "off $t0a $t1a" "on $t0b $t1b"; do
    set -- $x
    grep '^BENCH' "$OUT/wrk-$1" | /usr/bin/python3 -c 'import os, sys; d=dict(kv.split("=") for kv in sys.stdin.read().split()[1:]);
assert int(d["http_errors"]) == 0 and int(d["socket_errors"]) == 0, d
ticks = ('"$3"' - '"$2"') / os.sysconf("SC_CLK_TCK")
print("%.0f %s %.2f" % (int(d["requests"]) / float(d["seconds"]), d["p99_ms"], 1e6 * ticks / int(d["requests"])))'
  done
}
# each run's "requests/s p99 cpu" goes to a line of $OUT/res-off or $OUT/res-K (K: the traced
# server's index in OTLP_PROTOCOL), round by round
for r in $(seq "$ROUNDS"); do
  if [ -n "${TOGETHER:-}" ]; then
    { read -r rps p99 cpu; read -r rps2 p992 cpu2; } < <(run_both)
    echo "$rps $p99 $cpu" >>"$OUT/res-off"
    echo "$rps2 $p992 $cpu2" >>"$OUT/res-0"
    log "round $r together: off $rps requests/s (p99 $p99 ms), $cpu us/request; on $rps2 requests/s (p99 $p992 ms), $cpu2 us/request"
    continue
  fi
  read -r rps p99 cpu < <(run "$P_OFF" "$PID_OFF")
  echo "$rps $p99 $cpu" >>"$OUT/res-off"
  log "round $r tracing off:  $rps requests/s (p99 $p99 ms), $cpu us of server CPU per request"
  for k in "${!P_ONS[@]}"; do
    read -r rps p99 cpu < <(run "${P_ONS[$k]}" "${PID_ONS[$k]}")
    echo "$rps $p99 $cpu" >>"$OUT/res-$k"
    log "round $r tracing on (${PROTOS[$k]}): $rps requests/s (p99 $p99 ms), $cpu us of server CPU per request"
  done
done
sleep 6 # the exporters' last batch (every 5 s)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)"
for k in "${!P_ONS[@]}"; do
  X1=$(exporter_ticks "${PID_ONS[$k]}")
  S1=$(metric celer_trace_spans_exported_total "${P_ONS[$k]}")
  echo "== tracing on, --trace-rate ${TRACE_RATE:-1}, ${PROTOS[$k]}"
  /usr/bin/python3 - "$OUT/res-off" "$OUT/res-$k" "$ROUNDS" "$SECS" "$CONC" "${X0[$k]}" "$X1" "${S0[$k]}" "$S1" <<'PY'
import os, statistics, sys
off = [list(map(float, l.split())) for l in open(sys.argv[1])]
on = [list(map(float, l.split())) for l in open(sys.argv[2])]
rounds, secs, conc = sys.argv[3:6]
x0, x1, s0, s1 = (float(v) for v in sys.argv[6:10])
med = lambda v: statistics.median_low(v)
m_off, m_on = med([r[0] for r in off]), med([r[0] for r in on])
print(f"tracing off (median of {rounds} x {secs}s, c={conc}): {m_off:.0f} requests/s")
print(f"tracing on (median):                    {m_on:.0f} requests/s")
print("cost of tracing every request: %.1f%% of requests/s" % (100 * (1 - m_on / m_off)))
# the rounds' own ratios (each round's on against the off run beside it): drift between rounds cancels
r = med([b[0] / a[0] for a, b in zip(off, on)])
cr = med([b[2] / a[2] for a, b in zip(off, on)])
print("median of the rounds' own ratios: %.1f%% fewer requests/s, %.1f%% more CPU per request" % (100 * (1 - r), 100 * (cr - 1)))
c_off, c_on = med([x[2] for x in off]), med([x[2] for x in on])
print(f"server CPU per request (median): off {c_off:.2f} us, on {c_on:.2f} us (the exporter thread included)")
print("cost in CPU per request: %.1f%%" % (100 * (c_on / c_off - 1)))
print("of which the exporter thread: %.2f us of CPU per exported span (%d spans)" %
      (1e6 * (x1 - x0) / os.sysconf("SC_CLK_TCK") / max(1, s1 - s0), s1 - s0))
PY
  echo "spans: exported $(metric celer_trace_spans_exported_total "${P_ONS[$k]}"), dropped" \
    "$(metric celer_trace_spans_dropped_total "${P_ONS[$k]}"), failed $(metric celer_trace_spans_failed_total "${P_ONS[$k]}")"
done
