#!/usr/bin/env bash
# The stack celer's remote models replace (issue 22), side by side in one run: example pipelines as
# a FastAPI middleware in front of a KServe v2 upstream that runs their model, against celer running
# the same pipelines with the model remote on that upstream, and against the client calling the
# upstream directly. One command:
#
#   BENCH_SECONDS=8 bench/middleware_bench.sh
#
# The upstream is a real `celer serve` on examples/repository (it speaks Triton's protocol; in
# production it would be Triton on its own machine, here it shares the cores). Pipelines
# (BENCH_PIPELINES, default both): classify (a JPEG, tests/data/pipeline/cat.jpg, base64 in
# {"image": ...} -> tiny_cnn -> top-5 labels) and recommend (one user's fields -> user_tower -> top
# 10 of 10,000 items). Rows for each, at concurrency BENCH_CONCURRENCY (64) with wrk
# (bench/post.lua, keep-alive, -t2):
#   (a) upstream-json, upstream-bin: the client calls the model on the upstream directly with the
#       tensor the pre-processing gives (JSON, and Triton's binary tensors): the floor, with no
#       pre/post-processing at all;
#   (b) fastapi: bench/fastapi_middleware.py (uvicorn with uvloop + httptools, workers = the CPUs
#       the servers may use, an httpx.AsyncClient keep-alive pool per worker, JSON tensors to the
#       upstream; binary with BENCH_FASTAPI_BINARY=1): pre-processing in PIL/numpy, the upstream
#       call, post-processing;
#   (c) celer-remote: the front celer, serving the pipeline folder (copied from examples/repository)
#       with its model folder holding only a remote.yaml (url: the upstream; cache: false), the same
#       body byte for byte; and upstream-pipe: the same body to the same pipeline on the upstream,
#       which runs the model locally: the like-for-like reference for what the remote hop adds.
#       (c) runs when the tree has remote models (src/server/remote.c; BENCH_REMOTE=0 skips it,
#       BENCH_REMOTE=1 insists); then upstream-pipe, celer-remote and fastapi are also timed at
#       concurrency BENCH_LATENCY_CONCURRENCY (1): the added latency at p50 without load; and
#       remote-bin: upstream-bin's request (the model's binary tensor) to the front's remote model,
#       timed at that concurrency beside upstream-bin: what celer adds to a call of the upstream
#       with no pipeline work at all (the request passed through, the answer passed back).
# Before anything is timed, the answers must agree: (a)'s output post-processed in Python (the
# middleware's own functions) against (b)'s answer, for JSON and binary; and (c) against (b)
# (classify: the same top-5 labels, probabilities within 1e-2 as PIL's resize antialiases and
# celer's does not; recommend: the same items, scores within 1e-4 relative), and celer-remote
# against upstream-pipe (the same engine both sides: equal within 1e-6).
# Then BENCH_ROUNDS rounds (3) of BENCH_SECONDS (10) per row, the order rotated every round so that
# a drift of the shared machine falls on every row. Prints the medians: requests/s, p50/p99,
# errors, the tier's peak RSS (VmRSS summed over its process tree: the front celer; the uvicorn
# master and its workers; for the rows served by the upstream alone, the upstream's), the CPU per
# request of the tier plus the upstream, and the model's rows the upstream computed per request
# (its statistics' inference_count before and after the run: about 1 when every request made its
# own upstream call, a little more for the calls still in flight when wrk stops, well below 1 when
# something answered without calling: a cache, coalescing). Then the issue's targets at
# concurrency 64, celer-remote against fastapi: throughput >= 10x, p99 <= 0.1x, peak RSS <= 0.2x;
# and celer-remote's p50 over upstream-pipe <= 0.2 ms at concurrency 1 (at 64 too, for the record):
# the difference of the medians, and the median of the differences round by round ("by round").
# Env: BENCH_SECONDS, BENCH_WARMUP_SECONDS (2), BENCH_ROUNDS, BENCH_CONCURRENCY,
# BENCH_LATENCY_CONCURRENCY, BENCH_PIPELINES, BENCH_PORT_BASE (18481: upstream HTTP, +1 FastAPI,
# +2 celer-remote, +3 upstream gRPC), BENCH_BUILD_DIR, BENCH_WORKERS (FastAPI's workers),
# BENCH_FASTAPI_BINARY=1, BENCH_REMOTE (auto), BENCH_REMOTE_PROTOCOL (http, or grpc: remote.yaml's
# url is grpc://, the upstream's gRPC port), BENCH_REMOTE_YAML (lines added to every remote.yaml,
# e.g. 'max_batch_size: 16'), and BENCH_PIN=1: the servers on CPU 0 and wrk on CPU 1 (as
# bench/tls_bench.sh), so the servers' core is the one saturated and wrk's CPU is not taken from
# them; by default nothing is pinned and everything shares the cores. Raw output:
# BUILD/middleware-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
BASE=${BENCH_PORT_BASE:-18481}
P_UP=$BASE P_FAST=$((BASE + 1)) P_REMOTE=$((BASE + 2)) P_UPGRPC=$((BASE + 3))
ROUNDS=${BENCH_ROUNDS:-3}
C=${BENCH_CONCURRENCY:-64}
LAT_C=${BENCH_LATENCY_CONCURRENCY:-1}
SERVER_PIN= CLIENT_PIN= PINNED="nothing pinned"
[[ ${BENCH_PIN:-0} == 1 ]] && SERVER_PIN="taskset -c 0" CLIENT_PIN="taskset -c 1" PINNED="servers pinned to CPU 0, wrk to CPU 1"
WORKERS=${BENCH_WORKERS:-$($SERVER_PIN nproc)}
REMOTE=${BENCH_REMOTE:-auto}
[[ $REMOTE == auto ]] && { [[ -f src/server/remote.c ]] && REMOTE=1 || REMOTE=0; }
REMOTE_PROTOCOL=${BENCH_REMOTE_PROTOCOL:-http}
FASTAPI_BINARY=${BENCH_FASTAPI_BINARY:-0}
PIPES=(${BENCH_PIPELINES:-classify recommend})
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
rm -rf "$RUN" "$BODIES" && mkdir -p "$RUN" "$BODIES"
for p in $P_UP $P_FAST $P_REMOTE $P_UPGRPC; do
  port_free "$p" || { log "port $p on $HOST is taken; set BENCH_PORT_BASE"; exit 1; }
done
export PIPELINE_REPO=$ROOT/examples/repository

# ---- bodies, in BODIES/PIPELINE/: request.json for the tiers; the floor's tensor as JSON and as
# binary (tensor.bin, its JSON header's length in tensor.bin.hlen)
$PY - "$ROOT/tests/data/pipeline/cat.jpg" "$BODIES" "${PIPES[@]}" <<'EOF'
import base64, json, os, sys
sys.path.insert(0, "bench")
import fastapi_middleware as m
jpeg, bodies, *pipes = sys.argv[1:]
requests = {"classify": {"image": base64.b64encode(open(jpeg, "rb").read()).decode()},
            "recommend": {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios",
                          "exclude": [int(i) for i in m.top_k.__globals__["ITEM_IDS"][::997][:10]]}}
for p in pipes:
    os.makedirs(os.path.join(bodies, p))
    req_model, pre, _, input_name, _ = m.PIPELINES[p]
    with open(os.path.join(bodies, p, "request.json"), "w") as f:
        json.dump(requests[p], f)
    x = pre(req_model(**requests[p]))
    for binary, name in ((False, "tensor.json"), (True, "tensor.bin")):
        m.BINARY = binary
        body, headers = m.upstream_request(input_name, x)
        open(os.path.join(bodies, p, name), "wb").write(body)
        if binary:
            open(os.path.join(bodies, p, "tensor.bin.hlen"), "w").write(headers["Inference-Header-Content-Length"])
EOF

# ---- servers (every one started here is stopped on exit: bench/lib.sh)
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
UP_GRPC=(--grpc-port 0)
[[ $REMOTE_PROTOCOL == grpc ]] && UP_GRPC=(--grpc-address $HOST --grpc-port "$P_UPGRPC")
$SERVER_PIN "$BUILD/celer" serve --model-repository "$ROOT/examples/repository" --http-address $HOST --http-port "$P_UP" \
  "${UP_GRPC[@]}" --quiet >"$RUN/upstream.log" 2>&1 &
UPSTREAM=$!; PIDS+=("$UPSTREAM")
wait_ready "$UPSTREAM" "http://$HOST:$P_UP/v2/health/ready" upstream "$RUN/upstream.log"

UPSTREAM_BINARY=$FASTAPI_BINARY UPSTREAM_URL=http://$HOST:$P_UP $SERVER_PIN $PY -m uvicorn fastapi_middleware:app \
  --app-dir "$ROOT/bench" --host $HOST --port "$P_FAST" --workers "$WORKERS" --loop uvloop --http httptools \
  --no-access-log >"$RUN/fastapi.log" 2>&1 &
FASTAPI=$!; PIDS+=("$FASTAPI")
wait_ready "$FASTAPI" "http://$HOST:$P_FAST/health" "FastAPI ($WORKERS workers)" "$RUN/fastapi.log"

model_of() { case $1 in classify) echo tiny_cnn ;; recommend) echo user_tower ;; esac; }

# ---- (a) + Python post-processing against (b): the same answers before anything is timed
$PY - "http://$HOST:$P_UP" "http://$HOST:$P_FAST" "$BODIES" "${PIPES[@]}" <<'EOF' || { log "answers differ: nothing timed"; exit 1; }
import json, sys, urllib.request
sys.path.insert(0, "bench")
import fastapi_middleware as m
upstream, fastapi, bodies, *pipes = sys.argv[1:]

def post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()

for p in pipes:
    req_model, _, model, _, post_fn = m.PIPELINES[p]
    doc = json.load(open(f"{bodies}/{p}/request.json"))
    want = json.loads(post(f"{fastapi}/{p}", json.dumps(doc).encode(), {"Content-Type": "application/json"})[2])
    for name, headers in (("tensor.json", {"Content-Type": "application/json"}),
                          ("tensor.bin", {"Inference-Header-Content-Length": open(f"{bodies}/{p}/tensor.bin.hlen").read()})):
        got = post_fn(m.upstream_output(*post(f"{upstream}/v2/models/{model}/infer",
                                              open(f"{bodies}/{p}/{name}", "rb").read(), headers)), req_model(**doc))
        nums, keys = ("probabilities", "labels") if p == "classify" else ("scores", "item_ids")
        diff = max(abs(a - b) for a, b in zip(got[nums], want[nums]))
        same = got[keys] == want[keys] and len(got[nums]) == len(want[nums]) and diff <= 1e-6 * max(1, *map(abs, want[nums]))
        print(f"check: {p}: upstream {model} ({name}) + Python post-processing vs FastAPI: "
              f"{'same' if same else 'DIFFERENT'} {keys} {got[keys]}, max {nums} diff {diff:.1e}")
        if not same:
            print(f"  direct  {got}\n  FastAPI {want}")
            sys.exit(1)
EOF

# ---- (c) celer with a remote model in front of the same upstream (issue 22)
# The front repository, OUT/remote-repo: each pipeline's folder copied from examples/repository, and
# its model's folder holding only remote.yaml, pointing at the upstream. cache: false, because every
# timed request is the same body and a cache would answer it without the upstream.
FRONT=$OUT/remote-repo
make_front_repo() {
  local p m url=http://$HOST:$P_UP
  [[ $REMOTE_PROTOCOL == grpc ]] && url=grpc://$HOST:$P_UPGRPC
  rm -rf "$FRONT" && mkdir -p "$FRONT"
  for p in "${PIPES[@]}"; do
    m=$(model_of "$p")
    cp -r "$ROOT/examples/repository/$p" "$FRONT/$p"
    mkdir "$FRONT/$m"
    { printf 'url: %s\ncache: false\n' "$url"
      [[ -z ${BENCH_REMOTE_YAML:-} ]] || printf '%s\n' "$BENCH_REMOTE_YAML"; } >"$FRONT/$m/remote.yaml"
  done
}

# bench_celer_remote CMD...: starts CMD, a `celer serve` listening on $P_REMOTE whose pipelines
# (classify, recommend) call their model (tiny_cnn, user_tower) as a remote model on the upstream;
# checks its answers against FastAPI's and against the upstream's own pipeline (upstream-pipe), and
# adds celer-remote and upstream-pipe to the timed rows, and the rows timed at LAT_C.
ROWS=(upstream-json upstream-bin fastapi)
LAT_ROWS=()
CELER_REMOTE=
bench_celer_remote() {
  local p i
  "$@" >"$RUN/celer-remote.log" 2>&1 &
  CELER_REMOTE=$!; PIDS+=("$CELER_REMOTE")
  wait_ready "$CELER_REMOTE" "http://$HOST:$P_REMOTE/v2/health/ready" celer-remote "$RUN/celer-remote.log"
  for p in "${PIPES[@]}"; do  # the server's readiness does not wait for upstreams: the pipelines' does
    for ((i = 0; i < 300; i++)); do
      curl -sf -o /dev/null "http://$HOST:$P_REMOTE/v2/models/$p/ready" && break
      kill -0 "$CELER_REMOTE" 2>/dev/null || { log "celer-remote exited:"; tail -n 30 "$RUN/celer-remote.log" >&2; exit 1; }
      sleep 0.1
    done
    if ((i == 300)); then
      log "celer-remote: $p not ready after 30 s; its repository index and log:"
      curl -s -X POST "http://$HOST:$P_REMOTE/v2/repository/index" >&2; echo >&2
      tail -n 30 "$RUN/celer-remote.log" >&2; exit 1
    fi
  done
  $PY - "http://$HOST:$P_REMOTE" "http://$HOST:$P_FAST" "http://$HOST:$P_UP" "$BODIES" "${PIPES[@]}" <<'EOF' ||
import json, sys, urllib.error, urllib.request
celer, fastapi, upstream, bodies, *pipes = sys.argv[1:]
def post(url, body):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        sys.exit(f"check: {url} answered {e.code}: {e.read()[:500].decode(errors='replace')}")
for p in pipes:
    body = open(f"{bodies}/{p}/request.json", "rb").read()
    a = post(f"{celer}/v2/models/{p}/infer", body)
    nums, keys, tol = ("probabilities", "labels", 1e-2) if p == "classify" else ("scores", "item_ids", 1e-4)
    for name, b, t in (("FastAPI", post(f"{fastapi}/{p}", body), tol),
                       ("upstream-pipe", post(f"{upstream}/v2/models/{p}/infer", body), 1e-6)):
        scale = 1 if p == "classify" else max(map(abs, b[nums]))
        diff = max(abs(x - y) for x, y in zip(a[nums], b[nums])) / scale
        same = a[keys] == b[keys] and len(a[nums]) == len(b[nums]) and diff <= t
        print(f"check: {p}: celer-remote vs {name}: {'same' if same else 'DIFFERENT'} {keys}, {nums} diff {diff:.1e}")
        if not same:
            print(f"  celer-remote {a}\n  {name} {b}")
            sys.exit(1)
EOF
    { log "celer-remote disagrees: nothing timed"; exit 1; }
  ROWS+=(upstream-pipe celer-remote)
  LAT_ROWS=(upstream-pipe celer-remote fastapi upstream-bin remote-bin)
}
if ((REMOTE)); then
  make_front_repo
  bench_celer_remote $SERVER_PIN "$BUILD/celer" serve --model-repository "$FRONT" --http-address $HOST \
    --http-port "$P_REMOTE" --grpc-port 0 --quiet
else
  log "(c) celer with a remote model: skipped (BENCH_REMOTE=0, or this tree has no src/server/remote.c)"
fi

# ---- the rounds
up_rows() {  # up_rows MODEL: the rows the upstream computed for MODEL so far (its statistics)
  curl -sf "http://$HOST:$P_UP/v2/models/$1/stats" |
    $PY -c 'import json, sys; print(sum(s["inference_count"] for s in json.load(sys.stdin)["model_stats"]))' ||
    echo 0
}
one() {  # one PIPELINE ROW CONCURRENCY ROUND: one wrk run, a line in RESULTS
  local p=$1 c=$3 pid url body also=$UPSTREAM m rows0 line
  m=$(model_of "$p")
  WRK_ARGS=()
  case $2 in
    upstream-json) pid=$UPSTREAM url=http://$HOST:$P_UP/v2/models/$m/infer body=$BODIES/$p/tensor.json ;;
    upstream-bin) pid=$UPSTREAM url=http://$HOST:$P_UP/v2/models/$m/infer body=$BODIES/$p/tensor.bin
      WRK_ARGS=("Inference-Header-Content-Length: $(cat "$BODIES/$p/tensor.bin.hlen")") ;;
    upstream-pipe) pid=$UPSTREAM url=http://$HOST:$P_UP/v2/models/$p/infer body=$BODIES/$p/request.json ;;
    fastapi) pid=$FASTAPI url=http://$HOST:$P_FAST/$p body=$BODIES/$p/request.json ;;
    celer-remote) pid=$CELER_REMOTE url=http://$HOST:$P_REMOTE/v2/models/$p/infer body=$BODIES/$p/request.json ;;
    remote-bin) pid=$CELER_REMOTE url=http://$HOST:$P_REMOTE/v2/models/$m/infer body=$BODIES/$p/tensor.bin
      WRK_ARGS=("Inference-Header-Content-Length: $(cat "$BODIES/$p/tensor.bin.hlen")") ;;
  esac
  [[ $pid == "$UPSTREAM" ]] && also=
  rows0=$(up_rows "$m")
  line=$(wrk_run "$p-$2-r$4" "$pid" "$url" "$body" "$c" $also)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$2" "$c" "$4" "$line" "$(($(up_rows "$m") - rows0))" >>"$RESULTS"
  WRK_ARGS=()
  kill -0 "$pid" 2>/dev/null || { log "$2 DIED in round $4"; tail -n 30 "$RUN"/*.log >&2; exit 1; }
}
warm() {  # warm URL BODY: wrk for WARMUP seconds, not recorded
  $CLIENT_PIN wrk -t2 -c"$C" -d"${WARMUP}s" -s bench/post.lua "$1" -- "$2" >/dev/null 2>&1 || true
}
for p in "${PIPES[@]}"; do
  log "$p: warm-up ${WARMUP}s, then $ROUNDS rounds of ${DURATION}s per row (${ROWS[*]}) at concurrency $C" \
    "${LAT_ROWS[*]:+and (${LAT_ROWS[*]}) at concurrency $LAT_C}"
  warm "http://$HOST:$P_FAST/$p" "$BODIES/$p/request.json"
  [[ -z $CELER_REMOTE ]] || warm "http://$HOST:$P_REMOTE/v2/models/$p/infer" "$BODIES/$p/request.json"
  for ((r = 1; r <= ROUNDS; r++)); do
    n=${#ROWS[@]}
    for ((i = 0; i < n; i++)); do one "$p" "${ROWS[$(((i + r - 1) % n))]}" "$C" "$r"; done
    n=${#LAT_ROWS[@]}
    for ((i = 0; i < n; i++)); do one "$p" "${LAT_ROWS[$(((i + r - 1) % n))]}" "$LAT_C" "$r"; done
  done
done

echo
echo "celer middleware benchmark (issue 22), started $START, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr)"
echo "upstream: celer $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?') (Release, default flags, --quiet) on" \
  "examples/repository; FastAPI $($PY -c 'import fastapi; print(fastapi.__version__)')," \
  "uvicorn $($PY -c 'import uvicorn; print(uvicorn.__version__)') (uvloop, httptools, $WORKERS workers," \
  "$( ((FASTAPI_BINARY)) && echo binary || echo JSON) tensors upstream)," \
  "httpx $($PY -c 'import httpx; print(httpx.__version__)'), Pillow $($PY -c 'import PIL; print(PIL.__version__)')," \
  "numpy $($PY -c 'import numpy; print(numpy.__version__)')"
if [[ -n $CELER_REMOTE ]]; then
  echo "celer-remote: the same celer on $FRONT (default flags, --quiet), remote.yaml: $(paste -sd ' ' "$FRONT/$(model_of "${PIPES[0]}")/remote.yaml" 2>/dev/null)"
fi
for p in "${PIPES[@]}"; do
  echo "$p: request $(stat -c %s "$BODIES/$p/request.json") bytes; $(model_of "$p")'s tensor" \
    "$(stat -c %s "$BODIES/$p/tensor.json") bytes as JSON, $(stat -c %s "$BODIES/$p/tensor.bin") binary"
done
echo "wrk keep-alive (-t2, -t1 at concurrency 1) on the same $(nproc) cores as the servers ($PINNED), ${DURATION}s x $ROUNDS rounds rotated;" \
  "load average before: $LOADAVG; raw output: $RUN"
echo
$PY - "$RESULTS" "$C" "$LAT_C" <<'EOF'
import statistics, sys
rows = {}
C, LAT_C = sys.argv[2], sys.argv[3]
for line in open(sys.argv[1]):
    pipe, server, conc, rnd, req, sec, p50, p99, herr, serr, rss, cpu, up = line.rstrip("\n").split("\t")
    if req == "-":
        continue
    rows.setdefault((pipe, server, conc), []).append((int(req) / float(sec), float(p50), float(p99), int(herr) + int(serr),
                                                      int(rss) / 1024, int(cpu) * 1000 / max(int(req), 1),
                                                      int(up) / max(int(req), 1), rnd))
med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
ORDER = ("upstream-json", "upstream-bin", "remote-bin", "upstream-pipe", "fastapi", "celer-remote")
pipes = list(dict.fromkeys(k[0] for k in rows))
print("| pipeline | row | conc | req/s median (runs) | p50 ms | p99 ms | errors | peak RSS MiB (tier) "
      "| CPU us/req (tier + upstream) | upstream rows/req |")
print("|---|---|---|---|---|---|---|---|---|---|")
for pipe in pipes:
    for conc in dict.fromkeys((C, LAT_C)):
        for server in ORDER:
            a = rows.get((pipe, server, conc))
            if a:
                print(f"| {pipe} | {server} | {conc} | {med(a, 0):.0f} ({', '.join(f'{x[0]:.0f}' for x in a)}) "
                      f"| {med(a, 1):.3f} | {med(a, 2):.2f} | {sum(x[3] for x in a)} | {max(x[4] for x in a):.0f} "
                      f"| {med(a, 5):.0f} | {med(a, 6):.2f} |")

def mark(ok):
    return "met" if ok else "NOT met"

peak = lambda pipe, server: max(x[4] for k, v in rows.items() if k[:2] == (pipe, server) for x in v)  # noqa: E731
out = []
for pipe in pipes:
    f, c = rows.get((pipe, "fastapi", C)), rows.get((pipe, "celer-remote", C))
    if not (f and c):
        continue
    thr, p99, mem = med(c, 0) / med(f, 0), med(c, 2) / med(f, 2), peak(pipe, "celer-remote") / peak(pipe, "fastapi")
    added = []
    for conc in dict.fromkeys((LAT_C, C)):
        r, u = rows.get((pipe, "celer-remote", conc)), rows.get((pipe, "upstream-pipe", conc))
        if r and u:
            d = med(r, 1) - med(u, 1)
            # the same difference taken round by round (the two rows ran side by side in each round)
            ur = {x[7]: x[1] for x in u}
            paired = [x[1] - ur[x[7]] for x in r if x[7] in ur]
            added.append((conc, d, med(r, 1), med(u, 1), statistics.median(paired) if paired else float("nan")))
    lat = " ".join(f"c={conc}: {d:+.3f} ms ({r:.3f} vs {u:.3f}; by round {pd:+.3f}){' ' + mark(d <= 0.2) if conc == LAT_C else ''};"
                   for conc, d, r, u, pd in added)
    r, u = rows.get((pipe, "remote-bin", LAT_C)), rows.get((pipe, "upstream-bin", LAT_C))
    if r and u:  # the call alone: no pipeline on either side
        ur = {x[7]: x[1] for x in u}
        paired = [x[1] - ur[x[7]] for x in r if x[7] in ur]
        d = med(r, 1) - med(u, 1)
        lat += (f"; the call alone (remote-bin - upstream-bin) c={LAT_C}: {d:+.3f} ms ({med(r, 1):.3f} vs "
                f"{med(u, 1):.3f}; by round {statistics.median(paired) if paired else float('nan'):+.3f}) {mark(d <= 0.2)}")
    out.append(f"| {pipe} | {thr:.1f}x {mark(thr >= 10)} | {p99:.3f}x {mark(p99 <= 0.1)} | {mem:.3f}x {mark(mem <= 0.2)} "
               f"| {lat.rstrip(';')} |")
if out:
    print(f"\ntargets (issue 22): celer-remote against fastapi at concurrency {C}; celer-remote's p50 over upstream-pipe "
          f"(the same pipeline and body, the model local) at concurrency {LAT_C} (and {C}, for the record)\n")
    print(f"| pipeline | throughput celer / FastAPI (>= 10x) | p99 celer / FastAPI (<= 0.1x) "
          f"| peak RSS celer / FastAPI (<= 0.2x) | added p50, celer-remote - upstream-pipe (<= 0.2 ms at c={LAT_C}) |")
    print("|---|---|---|---|---|")
    print("\n".join(out))
EOF
