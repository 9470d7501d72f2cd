# Shell functions the benchmark scripts share (sourced by bench/run_bench.sh and
# bench/pipeline_bench.sh, which define `log` and HOST first): starting and stopping servers,
# and sampling their memory.

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

sample_peak_rss() {  # sample_peak_rss PID STOPFILE OUT
  local peak=0 now
  while [[ ! -e $2 ]]; do
    now=$(tree_rss_kib "$1"); ((now > peak)) && peak=$now
    sleep 0.1
  done
  echo "$peak" >"$3"
}
