#!/usr/bin/python3
"""Graceful drain on SIGTERM as Kubernetes needs it (docs/server.md, "Shutdown and draining"):
HTTP keep-alive clients and gRPC clients (python3-grpcio) at constant load, then SIGTERM; readiness
is 503 (ServerReady false, grpc.health NOT_SERVING) within 100 ms, every request during
--drain-delay-secs is answered (with Connection: close, GOAWAY on gRPC), an idle keep-alive
connection's next request too, connections are refused (not hung) after the delay, and the
process exits 0 within --shutdown-timeout-secs even with clients that keep their connection open
or never read their answers.

usage: test_drain.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from test_server import CELER, REPO_SRC, Server, check, free_port, summary  # noqa: E402

BODY = json.dumps({"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32",
                               "data": [0.25] * 16}]}).encode()
DELAY, TIMEOUT = 2, 5


def refused(port, host="127.0.0.1"):
    """'refused', 'accepted' or the error's name (a timeout means a hung listener)."""
    try:
        socket.create_connection((host, port), timeout=1).close()
        return "accepted"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return type(e).__name__


class HttpLoad(threading.Thread):
    """Inference requests on keep-alive connections until stopped: (start, end, status or error
    name, Connection header) per request; reconnects when the answer says close."""

    def __init__(self, port, stop):
        super().__init__()
        self.port, self.stop, self.log = port, stop, []

    def run(self):
        conn = None
        while not self.stop.is_set():
            t = time.time()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/v2/models/mlp/infer", body=BODY)
                r = conn.getresponse()
                r.read()
                close = r.getheader("Connection", "").lower()
                self.log.append((t, time.time(), r.status, close))
                if close == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                self.log.append((t, time.time(), type(e).__name__, ""))
                if conn:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn:
            conn.close()


class GrpcLoad(threading.Thread):
    """ModelInfer calls on one grpcio channel until stopped: (start, code name or 'OK')."""

    def __init__(self, grpc, pb, stub, stop):
        super().__init__()
        self.grpc, self.pb, self.stub, self.stop, self.log = grpc, pb, stub, stop, []

    def run(self):
        pb = self.pb
        req = pb.ModelInferRequest(model_name="mlp")
        inp = req.inputs.add(name="features", datatype="FP32", shape=[1, 16])
        inp.contents.fp32_contents.extend([0.25] * 16)
        while not self.stop.is_set():
            t = time.time()
            try:
                self.stub.ModelInfer(req, timeout=10)
                self.log.append((t, "OK"))
            except self.grpc.RpcError as e:
                self.log.append((t, e.code().name))
                time.sleep(0.02)


def h2_open(port):
    """A raw HTTP/2 connection: the client preface and an empty SETTINGS frame."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    return s


def h2_goaway(s, seconds):
    """The last stream id of the first GOAWAY frame read within `seconds`, or None."""
    buf, end = b"", time.time() + seconds
    while time.time() < end:
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            if buf[3] == 7:
                return int.from_bytes(buf[9:13], "big") & 0x7fffffff
            buf = buf[9 + n:]
        s.settimeout(max(0.01, end - time.time()))
        try:
            got = s.recv(65536)
        except socket.timeout:
            break
        if not got:
            break
        buf += got
    return None


def health_check(grpc, channel):
    """grpc.health.v1 Check of the server ("") by hand: 1 SERVING, 2 NOT_SERVING."""
    call = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
    resp = call(b"", timeout=5)
    return resp[1] if len(resp) == 2 and resp[0] == 8 else resp


def test_drain_under_load(repo, tmp):
    got = grpc_stubs.load(tmp)
    gport, mport = free_port(), free_port()
    srv = Server(repo, "--drain-delay-secs", str(DELAY), "--shutdown-timeout-secs", str(TIMEOUT),
                 "--grpc-port", str(gport), "--metrics-port", str(mport), "--quiet")
    stop = threading.Event()
    loads = [HttpLoad(srv.port, stop) for _ in range(6)]
    grpc_loads, channels = [], []
    if got:
        grpc, pb, pb_grpc = got
        for _ in range(2):
            ch = grpc_stubs.channel(grpc, gport)
            channels.append(ch)
            grpc_loads.append(GrpcLoad(grpc, pb, pb_grpc.GRPCInferenceServiceStub(ch), stop))
        probe_ch = grpc_stubs.channel(grpc, gport)
        probe = pb_grpc.GRPCInferenceServiceStub(probe_ch)
        check("before SIGTERM: gRPC ServerReady true, health SERVING",
              probe.ServerReady(pb.ServerReadyRequest(), timeout=5).ready and health_check(grpc, probe_ch) == 1)
    raw_h2 = h2_open(gport)
    h2_goaway(raw_h2, 0.2)  # the server's SETTINGS
    # an idle keep-alive connection: one request now, its next one during the delay
    idle = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    idle.request("GET", "/v2/health/live")
    idle.getresponse().read()
    # the keep-alive readiness poller's connection
    ready_ka = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    ready_ka.request("GET", "/v2/health/ready")
    r = ready_ka.getresponse()
    r.read()
    check("before SIGTERM: /v2/health/ready 200", r.status == 200, r.status)
    for t in loads + grpc_loads:
        t.start()
    time.sleep(1.0)

    t_sig = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    # readiness: on the keep-alive connection and on fresh ones, polled every few ms
    ka_503 = fresh_503 = None
    ka_headers = None
    while time.time() - t_sig < 1.0 and (ka_503 is None or fresh_503 is None):
        if ka_503 is None:
            try:
                ready_ka.request("GET", "/v2/health/ready")
                r = ready_ka.getresponse()
                r.read()
                if r.status == 503:
                    ka_503, ka_headers = time.time() - t_sig, dict(r.getheaders())
            except (OSError, http.client.HTTPException) as e:
                ka_503 = type(e).__name__
        if fresh_503 is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
                c.request("GET", "/v2/health/ready")
                if c.getresponse().status == 503:
                    fresh_503 = time.time() - t_sig
                c.close()
            except (OSError, http.client.HTTPException) as e:
                fresh_503 = type(e).__name__
        time.sleep(0.005)
    check("/v2/health/ready 503 within 100 ms on a keep-alive connection",
          isinstance(ka_503, float) and ka_503 < 0.1, ka_503)
    check("/v2/health/ready 503 within 100 ms on a new connection", isinstance(fresh_503, float) and fresh_503 < 0.1,
          fresh_503)
    check("the keep-alive connection's 503 says Connection: close",
          ka_headers is not None and ka_headers.get("Connection", "").lower() == "close", ka_headers)
    ready_ka.close()
    last = h2_goaway(raw_h2, 0.5)
    raw_h2.close()
    check("gRPC: an open connection gets the GOAWAY notice (last stream 2^31-1) at once", last == 0x7fffffff, last)
    if got:
        try:
            ready = probe.ServerReady(pb.ServerReadyRequest(), timeout=5).ready
            health = health_check(grpc, probe_ch)
        except grpc.RpcError as e:
            ready = health = e.code().name
        check("gRPC ServerReady false and health NOT_SERVING at once", not ready and health == 2
              and time.time() - t_sig < 0.5, (ready, health, time.time() - t_sig))
    # the idle connection's next request, in the middle of the delay
    time.sleep(max(0.0, t_sig + DELAY / 2 - time.time()))
    try:
        idle.request("POST", "/v2/models/mlp/infer", body=BODY)
        r = idle.getresponse()
        r.read()
        idle_out = (r.status, r.getheader("Connection", ""))
    except (OSError, http.client.HTTPException) as e:
        idle_out = type(e).__name__
    idle.close()
    check("an idle keep-alive connection's next request during the delay: 200 with Connection: close",
          idle_out == (200, "close"), idle_out)
    # new connections are accepted during the delay
    check("new connections accepted during the delay", refused(srv.port) == "accepted")
    # after the delay: refused, not hung
    time.sleep(max(0.0, t_sig + DELAY + 0.4 - time.time()))
    ports = {"HTTP": refused(srv.port), "metrics": refused(mport)}
    if got:
        ports["gRPC"] = refused(gport)
    check("after the delay: new connections refused on the HTTP, gRPC and metrics ports",
          all(v == "refused" for v in ports.values()), ports)
    stop.set()
    try:
        code = srv.proc.wait(timeout=TIMEOUT + 5)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        code = "hung"
    elapsed = time.time() - t_sig
    for t in loads + grpc_loads:
        t.join()
    for ch in channels:
        ch.close()
    if got:
        probe_ch.close()
    srv.log.close()
    log = srv.output()
    check("exit 0 within --shutdown-timeout-secs", code == 0 and elapsed < TIMEOUT, (code, elapsed, log[-2000:]))

    http_log = [e for t in loads for e in t.log]
    # a request begun before the delay ends is answered (the last 0.3 s may race the listener closing)
    during = [e for e in http_log if t_sig <= e[0] < t_sig + DELAY - 0.3]
    failed = [e for e in during if e[2] != 200]
    check("HTTP: requests during the delay all answered 200", during and not failed,
          (len(during), failed[:5]))
    late = [e for e in during if e[0] > t_sig + 0.1]
    check("HTTP: answers during the delay carry Connection: close", late and all(e[3] == "close" for e in late),
          [e for e in late if e[3] != "close"][:5])
    before = [e for e in http_log if e[1] < t_sig]
    check("HTTP: load ran before the signal", len(before) > 10 and all(e[2] == 200 for e in before), len(before))
    after = [e for e in http_log if e[0] >= t_sig + DELAY + 0.3]
    check("HTTP: after the delay clients are refused (not answered on a new connection)",
          all(e[2] in ("ConnectionRefusedError",) for e in after), {e[2] for e in after})
    if got:
        g_log = [e for t in grpc_loads for e in t.log]
        g_during = [e for e in g_log if t_sig <= e[0] < t_sig + DELAY - 0.3]
        g_failed = [e for e in g_during if e[1] != "OK"]
        check("gRPC: calls during the delay all OK (GOAWAY, then grpcio reconnects)", g_during and not g_failed,
              (len(g_during), g_failed[:5]))
    for line in ("draining: ready is now 503; serving for 2 s with Connection: close", "listeners closed; finishing",
                 "exiting"):
        check(f"log line '{line}'", line in log, log[-2000:])
    check("no sanitizer report", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


def test_stubborn_clients(repo):
    """Clients that keep their connection open or never read: exit 0 within the timeout anyway."""
    srv = Server(repo, "--drain-delay-secs", "1", "--shutdown-timeout-secs", "3", "--quiet")
    stop = threading.Event()
    # a client that never reads: pipelined requests for a large document until its socket fills
    reader = socket.create_connection(("127.0.0.1", srv.port))
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = b"GET /v2/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"

    def never_read():
        reader.settimeout(0.5)
        while not stop.is_set():
            try:
                reader.sendall(req * 16)
            except socket.timeout:
                continue
            except OSError:
                return

    # a client that keeps its connection open: a request's headers a byte at a time
    trickle = socket.create_connection(("127.0.0.1", srv.port))

    def dribble():
        for b in b"GET /v2/health/live HTTP/1.1\r\nX-Slow: " + b"a" * 1000:
            if stop.is_set():
                return
            try:
                trickle.send(bytes([b]))
            except OSError:
                return
            time.sleep(0.2)

    # and clients that keep sending requests on keep-alive connections
    loads = [HttpLoad(srv.port, stop) for _ in range(2)]
    threads = [threading.Thread(target=never_read), threading.Thread(target=dribble)] + loads
    for t in threads:
        t.start()
    time.sleep(1.0)
    t_sig = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        code = "hung"
    elapsed = time.time() - t_sig
    stop.set()
    reader.close()
    trickle.close()
    for t in threads:
        t.join()
    srv.log.close()
    log = srv.output()
    check("a client that never reads and one that keeps its connection open: exit 0 within the timeout",
          code == 0 and elapsed < 3.0, (code, elapsed, log[-2000:]))
    http_log = [e for t in loads for e in t.log]
    failed = [e for e in http_log if t_sig <= e[0] < t_sig + 0.7 and e[2] != 200]
    check("keep-alive clients answered during the delay", not failed, failed[:5])
    check("log says 'exiting'", "exiting" in log, log[-2000:])
    check("no sanitizer report (stubborn clients)", "Sanitizer" not in log and "runtime error" not in log, log[-2000:])


def test_second_signal(repo):
    """A second SIGTERM during the delay ends the delay: the listeners close at once."""
    srv = Server(repo, "--drain-delay-secs", "20", "--shutdown-timeout-secs", "25")
    t_sig = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    first = refused(srv.port)
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        code = "hung"
    elapsed = time.time() - t_sig
    srv.log.close()
    check("one SIGTERM: still accepting during the delay", first == "accepted", first)
    check("a second SIGTERM skips the rest of the delay: exit 0 at once", code == 0 and elapsed < 3,
          (code, elapsed, srv.output()[-1500:]))


def test_flags(repo):
    for args, words in ((["--drain-delay-secs", "5", "--shutdown-timeout-secs", "5"],
                         ["--shutdown-timeout-secs", "--drain-delay-secs"]),
                        (["--drain-delay-secs", "0", "--shutdown-timeout-secs", "0"],
                         ["--shutdown-timeout-secs", "--drain-delay-secs"])):
        p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()),
                            "--grpc-port", "0"] + args, capture_output=True, text=True, timeout=30)
        check(f"{' '.join(args)} refused at start naming both flags",
              p.returncode != 0 and all(w in p.stderr for w in words), (p.returncode, p.stderr[-500:]))
    srv = Server(repo, "--drain-delay-secs", "0", "--shutdown-timeout-secs", "1")
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    state = refused(srv.port)
    code = srv.proc.wait(timeout=10)
    srv.log.close()
    check("--drain-delay-secs 0: refused at once and exit 0", state == "refused" and code == 0
          and time.time() - t0 < 1.5, (state, code))


def main():
    tmp = tempfile.mkdtemp(prefix="celer-drain-")
    try:
        repo = os.path.join(tmp, "repository")
        os.makedirs(repo)
        for m in ("mlp", "identity"):
            shutil.copytree(os.path.join(REPO_SRC, m), os.path.join(repo, m))
        test_flags(repo)
        test_drain_under_load(repo, tmp)
        test_stubborn_clients(repo)
        test_second_signal(repo)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
