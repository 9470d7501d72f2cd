# What the HTTP benchmark scripts share (sourced by bench/run_bench.sh, bench/pipeline_bench.sh
# and bench/cache_bench.sh, which then set their own ports and RUN, and define `log`): the common
# settings, installing tools, building celer, starting and stopping servers, sampling their memory
# and CPU, and one wrk run.

# ---- settings (env: BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_BUILD_DIR)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=/usr/bin/python3
HOST=127.0.0.1
DURATION=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP_SECONDS:-2}
BUILD=$(realpath -m "${BENCH_BUILD_DIR:-$ROOT/build-bench}")  # absolute: nginx -p would prefix a relative one
CONCURRENCY=(1 8 64)

# ---- tools and build
install_missing() {  # install_missing PKG...: installs these Debian packages (apt-get update if needed)
  (($#)) || return 0
  log "installing $*"
  apt-get install -y "$@" >/dev/null || { apt-get update >/dev/null && apt-get install -y "$@" >/dev/null; }
}

build_celer() {  # build_celer NAME: celer (Release) in BUILD; a failed build falls back on an existing binary
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  if ! ninja -j2 -C "$BUILD" celer >"$BUILD/$1-build.log" 2>&1; then
    [[ -x $BUILD/celer ]] || { cat "$BUILD/$1-build.log"; exit 1; }
    log "build failed (see $BUILD/$1-build.log); using the existing $BUILD/celer"
  fi
}

# ---- processes: every server started here is stopped on exit
PIDS=()
stop() {  # stop PID: TERM, then KILL after 10 s
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local keep=() p  # forget it: its pid may be reused
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}
# SAMPLER: the memory sampler of the wrk run in progress; an exit in the middle of a run would
# otherwise orphan it, and it would write its peak into a later run's file
SAMPLER=
cleanup() {
  local p
  [[ -z $SAMPLER ]] || kill "$SAMPLER" 2>/dev/null || true
  for p in "${PIDS[@]}"; do stop "$p"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

wait_ready() {  # wait_ready PID URL NAME LOG: until URL answers 200 (60 s)
  local i
  for ((i = 0; i < 600; i++)); do
    kill -0 "$1" 2>/dev/null || { log "$3 exited at start:"; tail -n 30 "$4" >&2; exit 1; }
    curl -sf -o /dev/null "$2" && return 0
    sleep 0.1
  done
  log "$3 not ready after 60 s:"; tail -n 30 "$4" >&2; exit 1
}

# start_nginx PORT ANSWER: nginx answering every request on PORT with 200 and ANSWER (JSON without
# single quotes), whatever the method and body (it reads and drops the body): a server that does
# no work, for reference. Sets NGINX; its files are in $RUN/nginx.
start_nginx() {
  mkdir -p "$RUN/nginx"
  cat >"$RUN/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $RUN/nginx/nginx.pid;
error_log $RUN/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_max_body_size 64m;
  client_body_temp_path $RUN/nginx/body;
  proxy_temp_path $RUN/nginx/proxy;
  fastcgi_temp_path $RUN/nginx/fastcgi;
  uwsgi_temp_path $RUN/nginx/uwsgi;
  scgi_temp_path $RUN/nginx/scgi;
  server {
    listen $HOST:$1;
    location / {
      default_type application/json;
      return 200 '$2';
    }
  }
}
EOF
  /usr/sbin/nginx -p "$RUN/nginx" -e "$RUN/nginx/error.log" -c "$RUN/nginx/nginx.conf" >"$RUN/nginx.log" 2>&1 &
  NGINX=$!; PIDS+=("$NGINX")
  wait_ready "$NGINX" "http://$HOST:$1/" nginx "$RUN/nginx/error.log"
}

# ---- peak RSS of a process tree, sampled every 100 ms until STOPFILE exists
tree_rss_kib() {  # sum of VmRSS over PID and all its descendants
  local total=0 pid key val _ f kids
  local -a todo=("$1")
  while ((${#todo[@]})); do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    while read -r key val _; do
      [[ $key == VmRSS: ]] && total=$((total + val))
    done 2>/dev/null </proc/"$pid"/status || true
    for f in /proc/"$pid"/task/*/children; do
      kids=(); read -ra kids 2>/dev/null <"$f" || true
      todo+=("${kids[@]}")
    done
  done
  echo "$total"
}

tree_cpu_ms() {  # CPU time (user + system, all threads) used so far by each PID and its descendants
  local total=0 pid line f kids
  local -a todo=("$@") t
  while ((${#todo[@]})); do
    pid=${todo[0]}; todo=("${todo[@]:1}")
    if read -r line 2>/dev/null </proc/"$pid"/stat; then
      read -ra t <<<"${line##*) }"  # the fields after the command name: utime and stime are 12th and 13th
      total=$((total + t[11] + t[12]))
    fi
    for f in /proc/"$pid"/task/*/children; do
      kids=(); read -ra kids 2>/dev/null <"$f" || true
      todo+=("${kids[@]}")
    done
  done
  echo $((total * 1000 / $(getconf CLK_TCK)))
}

sample_peak_rss() {  # sample_peak_rss PID STOPFILE OUT
  local peak=0 now
  while [[ ! -e $2 ]]; do
    now=$(tree_rss_kib "$1"); ((now > peak)) && peak=$now
    sleep 0.1
  done
  echo "$peak" >"$3"
}

# ---- one wrk run
# wrk_run LABEL PID URL BODY CONCURRENCY [ALSO_PID]: loads URL with wrk (bench/post.lua POSTs
# BODY) for DURATION seconds while sampling PID's memory; prints "requests seconds p50_ms p99_ms
# http_errors socket_errors peak_rss_kib cpu_ms", tab-separated ("-" where wrk gave nothing).
# cpu_ms: CPU time PID's process tree (and ALSO_PID's, a service it depends on) used during the
# run. Raw output: $RUN/wrk-LABEL-CONCURRENCY.txt.
# CLIENT_PIN: a command wrk runs under (e.g. "taskset -c 1"); unset: none.
# WRK_ARGS: an array of extra request headers ("Name: value") bench/post.lua adds; unset: none.
wrk_run() {
  local label=$1 pid=$2 url=$3 body=$4 c=$5 threads=2 out=$RUN/wrk-$1-$5.txt rss=$RUN/rss-$1-$5 line cpu0
  local -a cpu_pids=("$2" ${6:+"$6"})
  ((c < threads)) && threads=$c
  rm -f "$RUN/stop"
  sample_peak_rss "$pid" "$RUN/stop" "$rss" &
  SAMPLER=$!
  cpu0=$(tree_cpu_ms "${cpu_pids[@]}")
  ${CLIENT_PIN:-} wrk -t"$threads" -c"$c" -d"${DURATION}s" --timeout 10s -s bench/post.lua "$url" -- "$body" ${WRK_ARGS[@]+"${WRK_ARGS[@]}"} >"$out" 2>&1 || true
  cpu0=$(($(tree_cpu_ms "${cpu_pids[@]}") - cpu0))
  touch "$RUN/stop"; wait "$SAMPLER"; SAMPLER=
  line=$(grep '^BENCH ' "$out" || true)
  if [[ -n $line ]]; then
    # BENCH requests=.. seconds=.. p50_ms=.. p99_ms=.. http_errors=.. socket_errors=..
    line=$(sed -E 's/^BENCH //; s/[a-z0-9_]+=//g; s/ /\t/g' <<<"$line")
  else
    log "wrk gave no result for $label c=$c:"; cat "$out" >&2
    line=$'-\t-\t-\t-\t-\t-'
  fi
  printf '%s\t%s\t%s\n' "$line" "$(cat "$rss")" "$cpu0"
}
