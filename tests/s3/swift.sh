#!/usr/bin/env bash
# A real S3 server on loopback for the end-to-end tests: OpenStack Swift 2.30 with its s3api
# middleware, from Debian 12 (scripts/deps.sh --test installs it). Swift, because tempauth checks
# every SigV4 signature against the user's secret; npm's s3rver accepts any signature, so it would
# hide signing bugs.
# One replica, one device folder, all four servers in the foreground (workers = 0).
# Credentials: access key test:tester, secret testing, region us-east-1, path-style addressing.
#   tests/s3/swift.sh start DIR PORT   S3 on 127.0.0.1:PORT; the object, container and account
#                                      servers take PORT+1..PORT+3; returns once it answers
#   tests/s3/swift.sh stop DIR         stops all four servers (the data under DIR is kept)
#   tests/s3/swift.sh stop-proxy DIR   stops only the proxy: S3 goes away, the storage stays
#   tests/s3/swift.sh start-proxy DIR  starts it again
# Everything lives under DIR (rings, configs, node/d1, NAME.pid, NAME.log), except swift.conf,
# which Swift reads from /etc/swift only: a minimal one is written there if it is missing.
set -euo pipefail

PY=/usr/bin/python3   # python3 on PATH may lack Debian's modules (pyenv)
SERVERS=(object container account proxy)

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | stop-proxy DIR | start-proxy DIR" >&2
  exit 2
}

# Whether something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Whether the server $1 recorded in $dir runs: the command line must still be that server with
# this folder's config, so that a reused pid (or a zombie, whose command line is empty) is not it.
alive() {
  local pid cmdline
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"swift-$1-server $dir/$1-server.conf "* ]]
}

# Whether the process launched for the server $1 has not exited: checked while starting, when
# its command line may still be this script's (before the exec).
running() {
  local pid state
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  state=$(sed -n 's/^State:\t\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

# The ports, read back from the configs written by start.
read_ports() {
  [[ -f "$dir/proxy-server.conf" ]] || { echo "swift: no instance in $dir" >&2; exit 1; }
  port=$(sed -n 's/^bind_port = //p' "$dir/proxy-server.conf")
}

backend_port() {
  sed -n 's/^bind_port = //p' "$dir/$1-server.conf"
}

launch() {
  # -v keeps Swift's log on stderr (there is no syslog here); stdin and stdout must not stay open,
  # or a caller capturing this script's output would wait for them.
  "$PY" "/usr/bin/swift-$1-server" "$dir/$1-server.conf" -v </dev/null >>"$dir/$1.log" 2>&1 &
  echo $! >"$dir/$1.pid"
}

stop_one() {
  local pid i
  if alive "$1"; then
    pid=$(cat "$dir/$1.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      alive "$1" || break
      sleep 0.1
    done
    if alive "$1"; then
      kill -KILL "$pid" 2>/dev/null || true
      while alive "$1"; do sleep 0.1; done
    fi
  fi
  rm -f "$dir/$1.pid"
}

show_logs() {
  local n
  for n in "$@"; do
    echo "--- $dir/$n.log (last 20 lines)" >&2
    tail -n 20 "$dir/$n.log" >&2 || true
  done
}

# Waits until the proxy's healthcheck answers 200 and the servers it forwards to accept
# connections (the healthcheck alone answers before they do). $@: the servers just launched.
wait_ready() {
  local t0 t1 n deadline=$((SECONDS + 60))
  t0=$(date +%s%N)
  while :; do
    for n in "$@"; do
      if ! running "$n"; then
        echo "swift: the $n server exited" >&2
        show_logs "$@"
        return 1
      fi
    done
    if [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/healthcheck") == 200 ]] &&
       listening "$(backend_port object)" && listening "$(backend_port container)" &&
       listening "$(backend_port account)"; then
      t1=$(date +%s%N)
      echo "swift: S3 on http://127.0.0.1:$port after $(( (t1 - t0) / 1000000 )) ms"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "swift: not ready after 60 s" >&2
      show_logs "$@"
      return 1
    fi
    sleep 0.1
  done
}

write_configs() {
  local n p
  for n in object container account; do
    case $n in
      object) p=$((port + 1)) ;;
      container) p=$((port + 2)) ;;
      account) p=$((port + 3)) ;;
    esac
    # mount_check = false: the device is a plain folder. The replicator, updater and auditor
    # sections are there for completeness; those daemons are never started.
    cat >"$dir/$n-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $p
devices = $dir/node
mount_check = false
swift_dir = $dir
workers = 0

[pipeline:main]
pipeline = $n-server

[app:$n-server]
use = egg:swift#$n

[$n-replicator]
[$n-auditor]
EOF
    [[ $n == account ]] || printf '[%s-updater]\n' "$n" >>"$dir/$n-server.conf"
  done

  # s3api signs against the region in location; tempauth holds the one user and checks its
  # signatures. With no memcached, the cache filter only logs that it cannot connect.
  cat >"$dir/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
swift_dir = $dir
workers = 0

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth bulk slo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:cache]
use = egg:swift#memcache

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:bulk]
use = egg:swift#bulk

[filter:slo]
use = egg:swift#slo
EOF
}

# One device d1, one replica, part power 6: the three rings in one Python process (each
# swift-ring-builder call costs about a second).
build_rings() {
  "$PY" - "$dir" "$((port + 1))" "$((port + 2))" "$((port + 3))" <<'EOF'
import sys
from swift.common.ring import RingBuilder

folder = sys.argv[1]
for name, port in zip(("object", "container", "account"), map(int, sys.argv[2:5])):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": port,
                     "device": "d1", "weight": 100, "meta": ""})
    builder.rebalance()
    builder.get_ring().save(f"{folder}/{name}.ring.gz")
EOF
}

ensure_swift_conf() {
  [[ -f /etc/swift/swift.conf ]] && return 0
  mkdir -p /etc/swift
  cat >/etc/swift/swift.conf <<'EOF'
[swift-hash]
swift_hash_path_suffix = celer-tests

[storage-policy:0]
name = Policy-0
default = yes
EOF
}

cmd=${1:-}
[[ $# -ge 2 ]] || usage
case $cmd in
  start)
    [[ $# -eq 3 && $3 =~ ^[0-9]+$ && $3 -ge 1 && $3 -le 65532 ]] || usage
    port=$3
    mkdir -p "$2/node/d1"
    dir=$(cd "$2" && pwd)
    for n in "${SERVERS[@]}"; do
      if alive "$n"; then
        echo "swift: already running in $dir (stop it first)" >&2
        exit 1
      fi
    done
    # A port held by another server would make Swift retry for 30 s, and a healthcheck answered
    # by someone else's proxy would look like success.
    for p in "$port" $((port + 1)) $((port + 2)) $((port + 3)); do
      if listening "$p"; then
        echo "swift: port $p is in use" >&2
        exit 1
      fi
    done
    ensure_swift_conf
    write_configs
    build_rings
    for n in "${SERVERS[@]}"; do launch "$n"; done
    if ! wait_ready "${SERVERS[@]}"; then
      for n in "${SERVERS[@]}"; do stop_one "$n"; done
      exit 1
    fi
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    dir=$(cd "$2" && pwd)
    for n in "${SERVERS[@]}"; do stop_one "$n"; done
    ;;
  stop-proxy)
    [[ $# -eq 2 ]] || usage
    dir=$(cd "$2" && pwd)
    stop_one proxy
    ;;
  start-proxy)
    [[ $# -eq 2 ]] || usage
    dir=$(cd "$2" && pwd)
    read_ports
    if alive proxy; then
      echo "swift: the proxy already runs in $dir" >&2
      exit 1
    fi
    if listening "$port"; then
      echo "swift: port $port is in use" >&2
      exit 1
    fi
    launch proxy
    if ! wait_ready proxy; then
      stop_one proxy
      exit 1
    fi
    ;;
  *) usage ;;
esac
