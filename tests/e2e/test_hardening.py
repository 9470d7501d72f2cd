#!/usr/bin/python3
"""`celer serve` against hostile clients and shutdown under load: SIGTERM with keep-alive clients
still sending, the shutdown timeout kept whatever is queued, paths decoded once, 414 for long
paths, request ids and logged paths escaped, answers from the headers alone (unknown model, body
over its cap, full queue, bodies of all connections over their budget), a total deadline for
headers and bodies that a trickle cannot extend, and a connection limit under the open-files
limit.

usage: test_hardening.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_server  # noqa: E402
from test_server import Server, check, summary  # noqa: E402
from test_overload import SLOW_CONFIG, BODY, wait_queue_depth  # noqa: E402


def raw(port, data, timeout=5.0):
    """Sends raw bytes, returns what the server answers before closing (b"" when it closed)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:") and len(rest) >= int(line.split(b":")[1]):
                        return out
    except socket.timeout:
        return None
    finally:
        s.close()


def status_of(answer):
    return int(answer.split(b" ", 2)[1]) if answer and answer.startswith(b"HTTP/1.1 ") else None


EXPECT = b"Expect: 100-continue\r\n\r\n"


def make_repo(tmp, src):
    repo = os.path.join(tmp, "repository")
    os.makedirs(os.path.join(repo, "slowq", "1"))
    shutil.copy(os.path.join(src, "mlp", "1", "model.onnx"), os.path.join(repo, "slowq", "1", "model.onnx"))
    with open(os.path.join(repo, "slowq", "config.pbtxt"), "w") as f:
        f.write(SLOW_CONFIG)
    for m in ("mlp", "classify", "tiny_cnn"):
        shutil.copytree(os.path.join(src, m), os.path.join(repo, m))
    return repo


def keepalive_client(port, stop, outcomes):
    """Sends inference requests on one keep-alive connection until stopped or closed."""
    conn = None
    while not stop.is_set():
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v2/models/mlp/infer", body=BODY_MLP)
            r = conn.getresponse()
            r.read()
            outcomes.append(r.status)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            outcomes.append(type(e).__name__)
            if conn:
                conn.close()
            conn = None
            if isinstance(e, ConnectionRefusedError):
                return
            time.sleep(0.01)


BODY_MLP = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                                   "data": [0.25] * 16}]}).encode()


def test_shutdown_keepalive(repo):
    """SIGTERM with 32 keep-alive clients still sending: exit 0, the listener closed at once."""
    for run in range(3):
        srv = Server(repo, "--quiet", "--shutdown-timeout-secs", "5")
        stop, outcomes = threading.Event(), []
        clients = [threading.Thread(target=keepalive_client, args=(srv.port, stop, outcomes)) for _ in range(32)]
        for t in clients:
            t.start()
        time.sleep(0.5)
        served_before = outcomes.count(200)
        t0 = time.time()
        srv.proc.send_signal(signal.SIGTERM)
        # refused within 3 s (at once, but a loaded machine under a sanitizer may take the signal late)
        refused = False
        deadline = time.time() + 3
        while not refused and time.time() < deadline:
            time.sleep(0.1)
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=0.5).close()
            except ConnectionRefusedError:
                refused = True
            except OSError:
                pass
        try:
            code = srv.proc.wait(timeout=10)
        except Exception:
            srv.proc.kill()
            code = "hung"
        elapsed = time.time() - t0
        stop.set()
        for t in clients:
            t.join()
        srv.log.close()
        odd = [o for o in outcomes if o not in (200, 503, "RemoteDisconnected", "ConnectionResetError",
                                                "ConnectionRefusedError", "BrokenPipeError",
                                                "ConnectionAbortedError", "BadStatusLine")]
        check(f"shutdown {run}: SIGTERM with 32 keep-alive clients exits 0 at once", code == 0 and elapsed < 5,
              (code, elapsed, srv.output()[-3000:]))
        check(f"shutdown {run}: new connections refused after SIGTERM", refused)
        check(f"shutdown {run}: clients were served, then answered or closed", served_before > 0 and not odd,
              (served_before, odd[:10]))


def test_shutdown_timeout(repo):
    """Requests queued for longer than --shutdown-timeout-secs get 503 and the process exits in time."""
    srv = Server(repo, "--quiet", "--shutdown-timeout-secs", "2")
    results = []

    def send():
        try:
            results.append(srv.request("POST", "/v2/models/slowq/infer", BODY)[0])
        except OSError as e:
            results.append(type(e).__name__)

    waiting = [threading.Thread(target=send) for _ in range(2)]
    for t in waiting:
        t.start()
    wait_queue_depth(srv, 2)  # they would wait 3 s for a fuller batch
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(timeout=10)
    elapsed = time.time() - t0
    for t in waiting:
        t.join()
    srv.log.close()
    check("shutdown timeout: exits 0 within --shutdown-timeout-secs", code == 0 and elapsed < 2.5, (code, elapsed))
    check("shutdown timeout: queued requests answered 503", results == [503, 503], results)


def test_paths_and_ids(repo):
    srv = Server(repo, "--header-timeout-secs", "2")
    try:
        port = srv.port
        a = raw(port, b"POST /v2/%2572epository/models/mlp/unload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        check("a path is decoded once: /v2/%2572epository is not /v2/repository", status_of(a) == 404, a)
        st, _, _ = srv.request("GET", "/v2/models/mlp/ready")
        check("the model is still loaded", st == 200, st)
        a = raw(port, b"GET /v2/models/m%6cp/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        check("a path is decoded once: m%6cp is mlp", status_of(a) == 200, a)

        for n in (3000, 16000, 30000):
            a = raw(port, b"GET /v2/models/" + b"a" * n + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            check(f"a path of {n} bytes gets 414", status_of(a) == 414, (a or b"")[:200])

        a = raw(port, b"GET /v2/health/live%0aforged HTTP/1.1\r\nHost: x\r\nX-Request-Id: ab\x01\x7fcd\r\n\r\n")
        head = (a or b"").split(b"\r\n\r\n")[0]
        check("control bytes in X-Request-Id are not echoed", b"\x01" not in head and b"\x7f" not in head
              and b"x-request-id: ab" not in head.lower(), head)
        time.sleep(0.2)
        log = srv.output()
        check("a %0a in the path cannot forge an access-log line",
              "forged" in log and not any(line.startswith("forged") for line in log.splitlines())
              and "%0Aforged" in log, log[-500:])
        a = raw(port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n")
        check("a printable X-Request-Id is echoed", b"X-Request-Id: abc-123" in (a or b""), a)
    finally:
        srv.stop()


def png(width, height):
    """A grey PNG of width x height, all zero: a few hundred bytes that decode to a lot."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(height)), 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def test_image_limits(repo):
    """An image over the side limit is the client's error (413, no Retry-After); one that finds
    the image memory budget held by other requests is 503 with Retry-After."""
    srv = Server(repo, "--quiet", "--image-memory-bytes", "4000000")
    try:
        st, body, headers = srv.request("POST", "/v2/models/classify/infer", png(9000, 1),
                                        {"Content-Type": "image/png"})
        check("an image over the side limit: 413 without Retry-After", st == 413 and "Retry-After" not in headers
              and b"side" in body, (st, body[:300], headers))
        st, body, headers = srv.request("POST", "/v2/models/classify/infer", png(2000, 2000),
                                        {"Content-Type": "image/png"})
        check("an image over the whole image budget: 413 naming it", st == 413 and (b"image-memory" in body
              or b"budget" in body), (st, body[:300]))
        st, body, _ = srv.request("POST", "/v2/models/classify/infer", png(300, 200), {"Content-Type": "image/png"})
        check("an image within the budget is served", st == 200, (st, body[:300]))
    finally:
        srv.stop()


def test_admission(repo):
    """Answers that need only the headers come before any body byte is sent (to a client that waits
    for 100 Continue; any other is answered after its body was read and dropped)."""
    srv = Server(repo, "--quiet", "--max-body-bytes", "1048576", "--max-body-total-bytes", "2097152")
    try:
        port = srv.port
        t0 = time.time()
        a = raw(port, b"POST /v2/models/nope/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n" + EXPECT)
        check("unknown model: 404 from the headers", status_of(a) == 404 and time.time() - t0 < 1, a)
        a = raw(port, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n" + EXPECT)
        check("Content-Length over --max-body-bytes: 413 from the headers", status_of(a) == 413, a)

        # bodies of all connections together: two hold 1.8 MB of the 2 MiB budget, a third is refused
        holders = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n{")
            holders.append(s)
        time.sleep(0.3)
        a = raw(port, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n" + EXPECT)
        check("bodies over --max-body-total-bytes: 503 with Retry-After from the headers",
              status_of(a) == 503 and b"Retry-After" in a and b"max-body-total-bytes" in a, a)
        for s in holders:
            s.close()
        time.sleep(0.3)
        st, _, _ = srv.request("POST", "/v2/models/mlp/infer", BODY_MLP)
        check("the budget comes back when those connections close", st == 200, st)

        # a deadline is kept while the request waits (the queue would hold it 3 s for a batch)
        timed = json.loads(BODY)
        timed["parameters"] = {"timeout": 1}
        t0 = time.time()
        st, body, headers = srv.request("POST", "/v2/models/slowq/infer", json.dumps(timed).encode())
        check("a 1 us timeout is answered at once: 503 with Retry-After", st == 503 and b"timed out" in body
              and headers.get("Retry-After") and time.time() - t0 < 0.5, (st, body, time.time() - t0))

        # a full queue answers from the headers: the body is never sent
        results = []
        waiting = [threading.Thread(target=lambda: results.append(srv.request("POST", "/v2/models/slowq/infer", BODY)[0]))
                   for _ in range(2)]
        for t in waiting:
            t.start()
        wait_queue_depth(srv, 2)
        t0 = time.time()
        a = raw(port, b"POST /v2/models/slowq/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n" + EXPECT)
        check("full queue: 503 with Retry-After from the headers, in milliseconds",
              status_of(a) == 503 and b"Retry-After" in a and time.time() - t0 < 0.5, (a, time.time() - t0))
        t0 = time.time()
        a = raw(port, b"POST /v2/models/slowq/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n"
                + b" " * 900000)
        check("full queue, a client that sends its body at once: 503 after it, not a reset",
              status_of(a) == 503 and time.time() - t0 < 1, (a, time.time() - t0))
        for t in waiting:
            t.join()
    finally:
        srv.stop()


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_repository_actions(repo):
    """400 concurrent loads: one pool thread runs them, a bounded queue holds them, the rest 503."""
    srv = Server(repo, "--quiet")
    try:
        base = threads_of(srv.proc.pid)
        statuses, peak, stop = [], [base], threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], threads_of(srv.proc.pid))
                time.sleep(0.005)

        def load():
            try:
                statuses.append(srv.request("POST", "/v2/repository/models/mlp/load", b"")[0])
            except OSError as e:
                statuses.append(type(e).__name__)

        sampler = threading.Thread(target=sample)
        sampler.start()
        clients = [threading.Thread(target=load) for _ in range(400)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        sampler.join()
        check("400 concurrent loads: each answered 200 or 503", statuses and set(statuses) <= {200, 503}
              and 200 in statuses, sorted(set(map(str, statuses))))
        check("400 concurrent loads start no thread of their own", peak[0] <= base + 1, (base, peak[0]))
        st, _, _ = srv.request("POST", "/v2/models/mlp/infer", BODY_MLP)
        check("the model serves after them", st == 200, st)
    finally:
        srv.stop()


def trickle(port, data, interval, until):
    """Sends data a byte at a time; returns seconds until the server closed, or None."""
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    try:
        for b in data:
            s.sendall(bytes([b]))
            time.sleep(interval)
            if time.time() - t0 > until:
                return None
        s.settimeout(until)
        s.recv(1)
        return time.time() - t0
    except OSError:
        return time.time() - t0
    finally:
        s.close()


def test_slow_clients(repo):
    srv = Server(repo, "--quiet", "--header-timeout-secs", "1", "--body-timeout-secs", "1",
                 "--request-timeout-secs", "30")
    try:
        t = trickle(srv.port, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200, 0.1, 6)
        check("headers at 10 bytes/s are cut at --header-timeout-secs", t is not None and t < 2.5, t)
        t = trickle(srv.port, b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\n\r\n"
                    + b" " * 400, 0.002, 6)
        check("a body trickled past --body-timeout-secs is cut", t is not None and t < 3.5, t)
        st, _, _ = srv.request("POST", "/v2/models/mlp/infer", BODY_MLP)
        check("the server still serves", st == 200, st)
    finally:
        srv.stop()


def test_connection_limit(repo, tmp):
    """With 256 open files, 300 idle connections cannot lock a new client out for long."""
    wrapper = os.path.join(tmp, "celer-256-files")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\nulimit -n 256\nexec "{test_server.CELER}" "$@"\n')
    os.chmod(wrapper, 0o755)
    real, test_server.CELER = test_server.CELER, wrapper
    try:
        srv = Server(repo, "--quiet", "--header-timeout-secs", "1")
    finally:
        test_server.CELER = real
    socks = []
    try:
        for _ in range(300):
            try:
                socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
            except OSError:
                break
        t0 = time.time()
        ok = False
        while time.time() - t0 < 5 and not ok:
            try:
                ok = srv.request("GET", "/v2/health/live")[0] == 200
            except OSError:
                time.sleep(0.1)
        check("300 idle connections with 256 open files: a new client is served within the header timeout",
              ok and time.time() - t0 < 3, time.time() - t0)
    finally:
        for s in socks:
            s.close()
        code = srv.stop()
        check("and the server exits 0", code == 0, (code, srv.output()[-2000:]))


def main():
    tmp = tempfile.mkdtemp(prefix="celer-hardening-")
    try:
        repo = make_repo(tmp, sys.argv[2])
        test_paths_and_ids(repo)
        test_admission(repo)
        test_image_limits(repo)
        test_repository_actions(repo)
        test_slow_clients(repo)
        test_connection_limit(repo, tmp)
        test_shutdown_timeout(repo)
        test_shutdown_keepalive(repo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
