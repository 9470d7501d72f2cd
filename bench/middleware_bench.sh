#!/usr/bin/env bash
# The stack celer's remote models replace (issue 22), side by side in one run: the `classify`
# pipeline (examples/repository/classify) as a FastAPI middleware in front of a KServe v2 upstream
# that runs tiny_cnn, against the client calling the upstream directly. One command:
#
#   bench/middleware_bench.sh
#
# The upstream is a real `celer serve` on examples/repository (it speaks Triton's protocol; in
# production it would be Triton on its own machine, here it shares the cores). Rows, at concurrency
# BENCH_CONCURRENCY (64) with wrk (bench/post.lua, keep-alive, -t2):
#   (a) upstream-json, upstream-bin: the client calls tiny_cnn on the upstream directly with the
#       tensor the pre-processing gives (JSON, and Triton's binary tensors): the floor, with no
#       pre/post-processing at all;
#   (b) fastapi: bench/fastapi_middleware.py (uvicorn with uvloop + httptools, workers = CPUs, an
#       httpx.AsyncClient keep-alive pool per worker, JSON to the upstream): the JPEG as base64 in
#       {"image": ...} in, PIL decode/resize + numpy, tiny_cnn upstream, softmax + top-5 out;
#   (c) celer-remote: celer serving classify with tiny_cnn as a remote model on the same upstream,
#       the same body byte for byte. Skipped until celer has remote models: issue 22 enables it by
#       writing the remote repository and calling bench_celer_remote with the celer command (below).
# Before anything is timed, the answers must agree: (a)'s logits post-processed in Python (the
# middleware's own postprocess) against (b)'s answer, for JSON and binary; and (c) against (b)
# (same top-5 labels; probabilities within 1e-2, as PIL's resize antialiases and celer's does not).
# Then BENCH_ROUNDS rounds (3) of BENCH_SECONDS (10) per row, the order rotated every round so
# that a drift of the shared machine falls on every row. Prints the medians: requests/s, p50/p99,
# errors, the tier's peak RSS (VmRSS summed over its process tree, the upstream's apart) and the
# CPU per request of the tier plus the upstream. Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2),
# BENCH_ROUNDS, BENCH_CONCURRENCY, BENCH_PORT_BASE (18481: upstream, +1 FastAPI, +2 celer-remote),
# BENCH_BUILD_DIR, BENCH_WORKERS (FastAPI's workers, default nproc), BENCH_FASTAPI_BINARY=1 (the
# middleware sends Triton's binary tensors upstream instead of JSON). Raw output:
# BUILD/middleware-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18481}
P_UP=$BASE P_FAST=$((BASE + 1)) P_REMOTE=$((BASE + 2))
ROUNDS=${BENCH_ROUNDS:-3}
C=${BENCH_CONCURRENCY:-64}
WORKERS=${BENCH_WORKERS:-$(nproc)}
FASTAPI_BINARY=${BENCH_FASTAPI_BINARY:-0}
OUT=$BUILD/middleware-bench
BODIES=$OUT/bodies
RUN=$OUT/run
RESULTS=$RUN/results.tsv

log() { echo "middleware-bench: $*" >&2; }

# ---- tools: wrk, FastAPI + uvicorn's fast loop/parser, httpx, PIL
missing=()
command -v wrk >/dev/null || missing+=(wrk)
$PY -c 'import uvloop, httptools' 2>/dev/null || missing+=(python3-uvloop python3-httptools)
$PY -c 'import fastapi, uvicorn' 2>/dev/null || missing+=(python3-fastapi python3-uvicorn)
$PY -c 'import httpx' 2>/dev/null || missing+=(python3-httpx)
$PY -c 'import PIL' 2>/dev/null || missing+=(python3-pil)
install_missing "${missing[@]}"

build_celer middleware-bench
rm -rf "$RUN" && mkdir -p "$RUN" "$BODIES"
for p in $P_UP $P_FAST $P_REMOTE; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done

# ---- bodies: image.json for the tiers; the floor's tensor, JSON and binary (+ its header length)
PIPELINE_REPO=$ROOT/examples/repository $PY - "$ROOT/tests/data/pipeline/cat.jpg" "$BODIES" <<'EOF'
import base64, json, os, sys
sys.path.insert(0, "bench")
import fastapi_middleware as m
jpeg, bodies = sys.argv[1:]
data = open(jpeg, "rb").read()
with open(os.path.join(bodies, "image.json"), "w") as f:
    json.dump({"image": base64.b64encode(data).decode()}, f)
x = m.preprocess(data)
for binary, name in ((False, "tensor.json"), (True, "tensor.bin")):
    m.BINARY = binary
    body, headers = m.upstream_request(x)
    open(os.path.join(bodies, name), "wb").write(body)
    if binary:
        open(os.path.join(bodies, "tensor.bin.hlen"), "w").write(headers["Inference-Header-Content-Length"])
EOF
HLEN=$(cat "$BODIES/tensor.bin.hlen")

# ---- servers (every one started here is stopped on exit: bench/lib.sh)
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
"$BUILD/celer" serve --model-repository "$ROOT/examples/repository" --http-address $HOST --http-port "$P_UP" \
  --grpc-port 0 --quiet >"$RUN/upstream.log" 2>&1 &
UPSTREAM=$!; PIDS+=("$UPSTREAM")
wait_ready "$UPSTREAM" "http://$HOST:$P_UP/v2/health/ready" upstream "$RUN/upstream.log"

UPSTREAM_BINARY=$FASTAPI_BINARY UPSTREAM_URL=http://$HOST:$P_UP PIPELINE_REPO=$ROOT/examples/repository $PY -m uvicorn fastapi_middleware:app \
  --app-dir "$ROOT/bench" --host $HOST --port "$P_FAST" --workers "$WORKERS" --loop uvloop --http httptools \
  --no-access-log >"$RUN/fastapi.log" 2>&1 &
FASTAPI=$!; PIDS+=("$FASTAPI")
wait_ready "$FASTAPI" "http://$HOST:$P_FAST/health" "FastAPI ($WORKERS workers)" "$RUN/fastapi.log"

U_JSON="http://$HOST:$P_UP/v2/models/tiny_cnn/infer"
U_FAST="http://$HOST:$P_FAST/classify"

# ---- (a) + Python post-processing against (b): same answers before anything is timed
PIPELINE_REPO=$ROOT/examples/repository $PY - "$U_JSON" "$U_FAST" "$BODIES" <<'EOF' || { log "answers differ: nothing timed"; exit 1; }
import sys, urllib.request
sys.path.insert(0, "bench")
import json
import fastapi_middleware as m
upstream, fastapi, bodies = sys.argv[1:]

def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()

_, _, b = post(fastapi, open(bodies + "/image.json", "rb").read(), {"Content-Type": "application/json"})
want = json.loads(b)
for name, headers in (("tensor.json", {"Content-Type": "application/json"}),
                      ("tensor.bin", {"Inference-Header-Content-Length": open(bodies + "/tensor.bin.hlen").read()})):
    got = m.postprocess(m.upstream_logits(*post(upstream, open(f"{bodies}/{name}", "rb").read(), headers))[0])
    diff = max(abs(a - b) for a, b in zip(got["probabilities"], want["probabilities"]))
    same = got["labels"] == want["labels"] and got["class_ids"] == want["class_ids"] and diff <= 1e-6
    print(f"check: upstream tiny_cnn ({name}) + Python post-processing vs FastAPI: "
          f"{'same' if same else 'DIFFERENT'} top-5 {got['labels']}, max probability diff {diff:.1e}")
    if not same:
        print(f"  direct  {got}\n  FastAPI {want}")
        sys.exit(1)
EOF

# ---- (c) celer with a remote model in front of the same upstream (issue 22)
# bench_celer_remote CMD...: starts CMD (a `celer serve` listening on $P_REMOTE whose classify
# pipeline calls tiny_cnn on http://$HOST:$P_UP), checks its answer against FastAPI's and adds it to
# the timed rows (ROWS). Issue 22: write the repository (classify/ and a remote tiny_cnn/) into
# $OUT/remote-repo and replace the `log ... skipped` line below by
#   bench_celer_remote "$BUILD/celer" serve --model-repository "$OUT/remote-repo" --http-address $HOST \
#     --http-port "$P_REMOTE" --grpc-port 0 --quiet
ROWS=(upstream-json upstream-bin fastapi)
CELER_REMOTE=
bench_celer_remote() {
  "$@" >"$RUN/celer-remote.log" 2>&1 &
  CELER_REMOTE=$!; PIDS+=("$CELER_REMOTE")
  wait_ready "$CELER_REMOTE" "http://$HOST:$P_REMOTE/v2/health/ready" celer-remote "$RUN/celer-remote.log"
  $PY - "http://$HOST:$P_REMOTE/v2/models/classify/infer" "$U_FAST" "$BODIES/image.json" <<'EOF' ||
import json, sys, urllib.request
celer, fastapi, body = sys.argv[1:]
def post(url):
    req = urllib.request.Request(url, data=open(body, "rb").read(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
a, b = post(celer), post(fastapi)
diff = max(abs(x - y) for x, y in zip(a["probabilities"], b["probabilities"]))
same = a["labels"] == b["labels"] and diff <= 1e-2
print(f"check: celer-remote vs FastAPI: {'same' if same else 'DIFFERENT'} top-5 labels, max probability diff {diff:.1e}")
sys.exit(0 if same else 1)
EOF
    { log "celer-remote and FastAPI disagree: nothing timed"; exit 1; }
  ROWS+=(celer-remote)
}
log "(c) celer with a remote model: skipped, celer has no remote models yet (issue 22 enables bench_celer_remote)"

# ---- the rounds
one() {  # one ROW ROUND: one wrk run, a line in RESULTS
  local pid url body extra=()
  case $1 in
    upstream-json) pid=$UPSTREAM url=$U_JSON body=$BODIES/tensor.json ;;
    upstream-bin) pid=$UPSTREAM url=$U_JSON body=$BODIES/tensor.bin extra=("Inference-Header-Content-Length: $HLEN") ;;
    fastapi) pid=$FASTAPI url=$U_FAST body=$BODIES/image.json ;;
    celer-remote) pid=$CELER_REMOTE url=http://$HOST:$P_REMOTE/v2/models/classify/infer body=$BODIES/image.json ;;
  esac
  local also=$UPSTREAM
  [[ $pid == "$UPSTREAM" ]] && also=
  WRK_ARGS=(${extra[@]+"${extra[@]}"})
  printf '%s\t%s\t%s\n' "$1" "$2" "$(wrk_run "$1-r$2" "$pid" "$url" "$body" "$C" $also)" >>"$RESULTS"
  WRK_ARGS=()
  kill -0 "$pid" 2>/dev/null || { log "$1 DIED in round $2"; tail -n 30 "$RUN"/*.log >&2; exit 1; }
}
log "warm-up ${WARMUP}s each, then $ROUNDS rounds of ${DURATION}s per row (${ROWS[*]}) at concurrency $C"
wrk -t2 -c$C -d"${WARMUP}s" -s bench/post.lua "$U_JSON" -- "$BODIES/tensor.json" >/dev/null 2>&1 || true
wrk -t2 -c$C -d"${WARMUP}s" -s bench/post.lua "$U_FAST" -- "$BODIES/image.json" >/dev/null 2>&1 || true
for ((r = 1; r <= ROUNDS; r++)); do
  n=${#ROWS[@]}
  for ((i = 0; i < n; i++)); do one "${ROWS[$(((i + r - 1) % n))]}" "$r"; done
done

echo
echo "celer middleware benchmark (issue 22), started $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "upstream: celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags, --quiet) on" \
  "examples/repository (tiny_cnn: [1,3,64,64] -> 10 logits); FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)')," \
  "uvicorn $($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools, $WORKERS workers," \
  "$( ((FASTAPI_BINARY)) && echo binary || echo JSON) upstream)," \
  "httpx $($PY -c 'import httpx; print(httpx.__version__)'), Pillow $($PY -c 'import PIL; print(PIL.__version__)')," \
  "numpy $($PY -c 'import numpy; print(numpy.__version__)')"
echo "picture: tests/data/pipeline/cat.jpg ($(stat -c %s "$ROOT/tests/data/pipeline/cat.jpg") bytes, base64 in JSON for the tiers);" \
  "the floor's tensor: $(stat -c %s "$BODIES/tensor.json") bytes JSON, $(stat -c %s "$BODIES/tensor.bin") bytes binary"
echo "wrk -t2 -c$C keep-alive on the same $(nproc) cores as the servers, ${DURATION}s x $ROUNDS rounds rotated;" \
  "load average before: $LOADAVG; raw output: $RUN"
echo
$PY - "$RESULTS" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    server, rnd, req, sec, p50, p99, herr, serr, rss, cpu = line.rstrip("\n").split("\t")
    if req == "-":
        continue
    rows.setdefault(server, []).append((int(req) / float(sec), float(p50), float(p99), int(herr) + int(serr),
                                        int(rss) / 1024, int(cpu) * 1000 / max(int(req), 1)))
print("| row | req/s median (runs) | p50 ms | p99 ms | errors | peak RSS MiB (tier) | CPU us/req (tier + upstream) |")
print("|---|---|---|---|---|---|---|")
for server in ("upstream-json", "upstream-bin", "fastapi", "celer-remote"):
    a = rows.get(server)
    if not a:
        continue
    med = lambda i: statistics.median(x[i] for x in a)  # noqa: E731
    print(f"| {server} | {med(0):.0f} ({', '.join(f'{x[0]:.0f}' for x in a)}) | {med(1):.2f} | {med(2):.2f} "
          f"| {sum(x[3] for x in a)} | {max(x[4] for x in a):.0f} | {med(5):.0f} |")
f, c = rows.get("fastapi"), rows.get("celer-remote")
if f and c:
    m = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    print(f"\nceler-remote / FastAPI: throughput {m(c, 0) / m(f, 0):.1f}x (target >= 10x), p99 {m(c, 2) / m(f, 2):.3f}x"
          f" (<= 0.1x), peak RSS {max(x[4] for x in c) / max(x[4] for x in f):.3f}x (<= 0.2x)")
EOF
