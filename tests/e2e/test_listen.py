#!/usr/bin/python3
"""Listen addresses (docs/server.md, "Listen addresses"): by default the HTTP, gRPC and metrics
ports serve both families (127.0.0.1 and ::1); --http-address/--grpc-address/--metrics-address
::1 serve IPv6 only, 127.0.0.1 IPv4 only; the start-up line shows IPv6 in brackets; a bad address
is refused at start naming its flag; the access log shows IPv6 clients.

usage: test_listen.py CELER_BIN EXAMPLE_REPOSITORY"""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from test_server import CELER, REPO_SRC, check, free_port, summary  # noqa: E402


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def get(host, port, path="/v2/health/ready"):
    """The status of GET path on host (an IPv4 or IPv6 literal), or the error's name."""
    try:
        c = http.client.HTTPConnection(host, port, timeout=5)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status
    except OSError as e:
        return type(e).__name__


class Srv:
    """`celer serve` with the given addresses; waits until HTTP answers on `probe`."""

    def __init__(self, repo, probe, *extra):
        self.port, self.gport, self.mport = free_port(), free_port(), free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([CELER, "serve", "--model-repository", repo, "--http-port", str(self.port),
                                      "--grpc-port", str(self.gport), "--metrics-port", str(self.mport),
                                      "--drain-delay-secs", "0", "--workers", "1"] + list(extra),
                                     stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline and self.proc.poll() is None:
            if get(probe, self.port, "/v2/health/live") == 200:
                return
            time.sleep(0.05)
        raise RuntimeError("server did not start: " + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return "hung"


def grpc_ready(got, target):
    """ServerReady through grpcio at target ('ipv4:127.0.0.1:p', 'ipv6:[::1]:p'), or the error's code."""
    grpc, pb, pb_grpc = got
    ch = grpc.insecure_channel(target)
    try:
        return pb_grpc.GRPCInferenceServiceStub(ch).ServerReady(pb.ServerReadyRequest(), timeout=5).ready
    except grpc.RpcError as e:
        return e.code().name
    finally:
        ch.close()


def run(repo, tmp):
    got = grpc_stubs.load(tmp)
    # the default: both families on every port
    srv = Srv(repo, "127.0.0.1")
    try:
        check("default: HTTP on 127.0.0.1 and ::1", get("127.0.0.1", srv.port) == 200 and get("::1", srv.port) == 200,
              (get("127.0.0.1", srv.port), get("::1", srv.port)))
        check("default: metrics port on 127.0.0.1 and ::1",
              get("127.0.0.1", srv.mport, "/metrics") == 200 and get("::1", srv.mport, "/metrics") == 200)
        if got:
            v4, v6 = grpc_ready(got, f"ipv4:127.0.0.1:{srv.gport}"), grpc_ready(got, f"ipv6:[::1]:{srv.gport}")
            check("default: gRPC on 127.0.0.1 and ::1", v4 is True and v6 is True, (v4, v6))
    finally:
        code = srv.stop()
    log = srv.output()
    check("default: start-up line shows [::] in brackets",
          f"on http://[::]:{srv.port} and grpc://[::]:{srv.gport}, metrics on http://[::]:{srv.mport}/metrics" in log,
          log[:600])
    check("default: access log names the IPv4 client as 127.0.0.1 and the IPv6 one as ::1",
          " 127.0.0.1 " in log and " ::1 " in log, log[-800:])
    check("default: exit 0", code == 0, code)

    # ::1 only
    srv = Srv(repo, "::1", "--http-address", "::1", "--grpc-address", "::1", "--metrics-address", "[::1]")
    try:
        check("--http-address ::1: served on ::1, refused on 127.0.0.1",
              get("::1", srv.port) == 200 and get("127.0.0.1", srv.port) == "ConnectionRefusedError",
              (get("::1", srv.port), get("127.0.0.1", srv.port)))
        check("--metrics-address [::1]: served on ::1, refused on 127.0.0.1",
              get("::1", srv.mport, "/metrics") == 200
              and get("127.0.0.1", srv.mport, "/metrics") == "ConnectionRefusedError")
        if got:
            v6, v4 = grpc_ready(got, f"ipv6:[::1]:{srv.gport}"), grpc_ready(got, f"ipv4:127.0.0.1:{srv.gport}")
            check("--grpc-address ::1: ServerReady on ipv6:[::1], unavailable on 127.0.0.1",
                  v6 is True and v4 == "UNAVAILABLE", (v6, v4))
    finally:
        code = srv.stop()
    log = srv.output()
    check("::1: start-up line in brackets", f"on http://[::1]:{srv.port} and grpc://[::1]:{srv.gport}" in log, log[:600])
    check("::1: exit 0", code == 0, code)

    # IPv4 only
    srv = Srv(repo, "127.0.0.1", "--http-address", "127.0.0.1")
    try:
        check("--http-address 127.0.0.1: refused on ::1", get("::1", srv.port) == "ConnectionRefusedError",
              get("::1", srv.port))
    finally:
        srv.stop()

    for flag in ("--http-address", "--grpc-address", "--metrics-address"):
        p = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()),
                            "--grpc-port", str(free_port()), "--metrics-port", str(free_port()), flag, "::1::2"],
                           capture_output=True, text=True, timeout=30)
        check(f"{flag} '::1::2' refused at start naming the flag",
              p.returncode != 0 and flag in p.stderr and "IPv6" in p.stderr, (p.returncode, p.stderr[-400:]))


def main():
    if not has_ipv6_loopback():
        print("SKIP: this machine has no IPv6 loopback (::1 cannot be bound); nothing tested")
        return 0
    tmp = tempfile.mkdtemp(prefix="celer-listen-")
    try:
        repo = os.path.join(tmp, "repository")
        os.makedirs(repo)
        shutil.copytree(os.path.join(REPO_SRC, "mlp"), os.path.join(repo, "mlp"))
        run(repo, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
