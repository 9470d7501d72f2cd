#!/usr/bin/python3
"""End-to-end tests of the Redis tier of the result cache (--cache-redis): a real redis-server
started here on a free loopback port, and the real celer server on a copy of the example
repository with caching enabled on mlp.

Checks: a result computed by one server is a hit for a second one through Redis, stored with the
endpoint's TTL; Redis killed while requests flow (every request still answers 200, errors are
counted, the tier is reported down) and restarted (used again); Redis stalled by DEBUG SLEEP
(requests go on within the timeout); a password and database number in the URL, and a wrong
password (requests still answer).

usage: test_cache_redis.py CELER_BIN EXAMPLE_REPOSITORY
Prints one line per check and "N passed, M failed"; exits non-zero when any failed."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import Server, check, free_port, summary  # noqa: E402

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


class Redis:
    def __init__(self, port=None, password=None):
        self.port = port or free_port()
        self.password = password
        args = [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        if password:
            args += ["--requirepass", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.command("PING") in ("PONG", "NOAUTH Authentication required."):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def command(self, *args, db=0):
        """One command over RESP; returns the reply (str, int, bytes or None)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rwb")
            cmds = []
            if self.password:
                cmds.append(("AUTH", self.password))
            if db:
                cmds.append(("SELECT", str(db)))
            cmds.append(args)
            for c in cmds:
                f.write(f"*{len(c)}\r\n".encode())
                for a in c:
                    a = a if isinstance(a, bytes) else str(a).encode()
                    f.write(b"$%d\r\n%s\r\n" % (len(a), a))
            f.flush()
            reply = None
            for _ in cmds:
                reply = read_reply(f)
            return reply

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def read_reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-"):
        return rest.decode()
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if kind == b"*":
        return [read_reply(f) for _ in range(int(rest))]
    raise RuntimeError(f"bad reply {line!r}")


def body(v):
    return json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                                   "data": [float(v)] + [float(i) for i in range(15)]}]}).encode()


def infer(srv, v):
    status, data, headers = srv.request("POST", "/v2/models/mlp/infer", body(v))
    return status, headers.get("X-Celer-Cache"), data


def metric(srv, name):
    _, text, _ = srv.request("GET", "/metrics")
    for line in text.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.split(" ")[0] == name or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    return None


def main():
    celer, repo_src = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="celer-e2e-redis-")
    repo = os.path.join(tmp, "repository")
    shutil.copytree(repo_src, repo)
    with open(os.path.join(repo, "mlp", "config.pbtxt"), "a") as f:
        f.write('response_cache { enable: true }\nparameters { key: "cache_ttl_seconds" value: { string_value: "30" } }\n')
    redis = Redis()
    servers = []
    try:
        url = f"redis://127.0.0.1:{redis.port}/0"
        a = Server(repo, "--cache-redis", url, "--cache-redis-timeout-ms", "50")
        servers.append(a)
        status, state, first = infer(a, 1)
        check("a miss computes and answers", status == 200 and state == "miss", (status, state))
        keys = redis.command("KEYS", "celer:*")
        check("the result is stored in Redis under celer:<key>", isinstance(keys, list) and len(keys) == 1, keys)
        ttl = redis.command("PTTL", keys[0]) if keys else -1
        check("with the endpoint's TTL (30 s)", 28000 < ttl <= 30000, ttl)
        b = Server(repo, "--cache-redis", url, "--cache-redis-timeout-ms", "50")
        servers.append(b)
        status, state, second = infer(b, 1)
        check("another server answers it from Redis", status == 200 and state == "hit" and second == first,
              (status, state))
        check("counted as a Redis hit", metric(b, 'celer_cache_hits_total{tier="redis"}') == 1.0)
        status, state, _ = infer(b, 1)
        check("then from its own memory", state == "hit" and metric(b, 'celer_cache_hits_total{tier="memory"}') == 1.0)
        check("the tier is up", metric(a, 'celer_cache_up{tier="redis"}') == 1.0)

        # Redis killed while requests flow: every request still answers
        results, stop = [], threading.Event()

        def client():
            v = 1000
            while not stop.is_set():
                v += 1
                s, st, _ = infer(a, v)
                results.append(s)

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.3)
        port = redis.port
        redis.stop()
        time.sleep(0.7)
        stop.set()
        t.join()
        check("Redis killed under load: every request answered 200", results and all(s == 200 for s in results),
              (len(results), sorted(set(results))))
        check("errors counted", (metric(a, 'celer_cache_errors_total{tier="redis"}') or 0) >= 1)
        check("the tier is reported down", metric(a, 'celer_cache_up{tier="redis"}') == 0.0)
        t0 = time.time()
        for v in range(2000, 2050):
            infer(a, v)
        per = (time.time() - t0) / 50
        check("with Redis down, requests do not wait for it", per < 0.05, f"{per * 1000:.1f} ms per request")

        redis = Redis(port=port)
        deadline, seen_up, v = time.time() + 12, False, 6000
        while time.time() < deadline and not seen_up:  # backoff is at most 5 s
            v += 1  # small integers: exact in FP32, so every request is a new key
            infer(a, v)
            seen_up = metric(a, 'celer_cache_up{tier="redis"}') == 1.0
            time.sleep(0.2)
        check("Redis restarted: used again", seen_up)
        infer(a, 3000)
        check("and written again", (redis.command("DBSIZE") or 0) >= 1, redis.command("DBSIZE"))

        # Redis stalled: requests go on within the timeout
        stall = threading.Thread(target=lambda: redis.command("DEBUG", "SLEEP", "1"))
        stall.start()
        time.sleep(0.1)
        t0 = time.time()
        codes = [infer(a, v)[0] for v in range(4000, 4010)]
        took = time.time() - t0
        stall.join()
        check("Redis stalled: requests answered 200", all(c == 200 for c in codes), codes)
        check("without waiting for Redis beyond its timeout", took < 0.8, f"{took:.2f} s for 10 requests")

        # password and database in the URL
        secure = Redis(password="s3cret")
        c = Server(repo, "--cache-redis", f"redis://:s3cret@127.0.0.1:{secure.port}/2")
        servers.append(c)
        infer(c, 5000)
        check("password and database: stored in db 2", secure.command("DBSIZE", db=2) == 1, secure.command("DBSIZE", db=2))
        d = Server(repo, "--cache-redis", f"redis://:wrong@127.0.0.1:{secure.port}/2")
        servers.append(d)
        status, state, _ = infer(d, 5001)
        check("a wrong password: the request still answers", status == 200, status)
        check("and the failure is counted", (metric(d, 'celer_cache_errors_total{tier="redis"}') or 0) >= 1)
        secure.stop()
        bad = subprocess.run([celer, "serve", "--model-repository", repo, "--grpc-port", "0", "--cache-redis", "http://x"],
                             capture_output=True, text=True, timeout=30)
        check("a malformed URL is refused at start", bad.returncode != 0 and "redis://" in bad.stderr, bad.stderr[-300:])
        bad = subprocess.run([celer, "serve", "--model-repository", repo, "--grpc-port", "0", "--cache-redis",
                              "redis://user:s3cret-pw@host:99999"], capture_output=True, text=True, timeout=30)
        check("a malformed URL with a password: refused, the password not in the error",
              bad.returncode != 0 and "host:99999" in bad.stderr and "s3cret" not in bad.stderr, bad.stderr[-300:])
    finally:
        for s in servers:
            s.stop()
        try:
            redis.stop()
        except Exception:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
