#!/usr/bin/python3
"""End-to-end: TLS on the HTTP and gRPC ports, with TLS stacks nobody here wrote.
A CA, an intermediate, server certificates for 127.0.0.1/localhost (two serials, the second one
issued by the intermediate and served as a full chain), client certificates and a self-signed one
are made with `openssl` in a temporary folder.
- start-up: --tls-cert without --tls-key (and the reverse), --tls-client-ca alone, a key that is not
  the certificate's, a missing file: refused, naming the flags;
- curl: --cacert 200, without it exit 60; `openssl s_client`: TLS 1.0 and 1.1 refused (with the
  client's floor lowered: SECLEVEL=0), 1.2 and 1.3 served; Python's ssl (urllib with a CA file)
  infers on mlp, checked against NumPy;
- SIGHUP: the served serial changes on both ports, an open keep-alive connection (http.client over
  ssl) goes on on its old session, a broken key or one of another certificate keeps the serving one
  and the log says why, celer_tls_cert_expiry_timestamp_seconds is the not-after date, failures are
  counted;
- gRPC: @grpc/grpc-js credentials.createSsl (npm, pinned) runs ServerReady and ModelInfer, and
  Debian's python3-grpcio keeps a TLS channel open across the reload; a
  plaintext client is refused, a TLS client without ALPN h2 is refused, TLS 1.2 CBC suites
  (RFC 9113 9.2.2) and TLS 1.0/1.1 are refused;
- mutual TLS: without a client certificate, with a self-signed one, one of another CA or one for
  servers only, the handshake fails (curl gets no HTTP status; grpc-js UNAVAILABLE); with a
  CA-signed client certificate 200 and OK; a new client CA is taken by SIGHUP; the metrics port
  stays plain HTTP.

usage: test_tls.py CELER_BIN EXAMPLE_REPOSITORY"""
import atexit
import calendar
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc_stubs  # noqa: E402
from node_cache import node_modules  # noqa: E402
from test_server import Server, check, free_port, infer_body, mlp_reference, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
GRPC_DIR = os.path.join(HERE, "..", "grpc")
PROTO_DIR = os.path.join(GRPC_DIR, "proto")
NODE_PACKAGES = ["@grpc/grpc-js@1.14.7", "@grpc/proto-loader@0.8.1"]
UNAVAILABLE = 14
SERIAL1, SERIAL2 = 0x1001, 0x1002
EXT = """[srv]
subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth
[cli]
extendedKeyUsage=clientAuth
[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
"""


def openssl(*args, stdin=None, timeout=20):
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, text=True, errors="replace",
                          timeout=timeout)


def must(r):
    if r.returncode:
        raise RuntimeError(f"openssl failed: {r.stderr}")
    return r


def make_pki(d):
    """Files in d: ca, inter (issued by ca), srv1 (ca, SERIAL1, 10 days), srv2 (inter, SERIAL2, 20
    days; srv2.chain = leaf + inter), cli (ca), ca2 + cli2 (another CA), self (self-signed)."""
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write(EXT)
    p = lambda name: os.path.join(d, name)  # noqa: E731

    def key_and_csr(name, cn):
        must(openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", p(name + ".key"),
                     "-out", p(name + ".csr"), "-subj", "/CN=" + cn))

    def sign(name, issuer, serial, days, section):
        must(openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p(issuer + ".pem"), "-CAkey", p(issuer + ".key"),
                     "-set_serial", str(serial), "-days", str(days), "-extfile", ext, "-extensions", section,
                     "-out", p(name + ".pem")))

    for ca in ("ca", "ca2", "self"):
        must(openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                     p(ca + ".key"), "-out", p(ca + ".pem"), "-days", "30", "-subj", f"/CN=celer test {ca}"))
    key_and_csr("inter", "celer test intermediate")
    sign("inter", "ca", 0x500, 30, "ca")
    key_and_csr("srv1", "localhost")
    sign("srv1", "ca", SERIAL1, 10, "srv")
    key_and_csr("srv2", "localhost")
    sign("srv2", "inter", SERIAL2, 20, "srv")
    with open(p("srv2.chain"), "w") as f:
        f.write(open(p("srv2.pem")).read() + open(p("inter.pem")).read())
    key_and_csr("cli", "client")
    sign("cli", "ca", 0x2001, 10, "cli")
    key_and_csr("cli2", "client two")
    sign("cli2", "ca2", 0x2002, 10, "cli")


def not_after(pem):
    end = must(openssl("x509", "-noout", "-enddate", "-in", pem)).stdout.strip().split("=", 1)[1]
    return calendar.timegm(time.strptime(end, "%b %d %H:%M:%S %Y %Z"))


class TlsServer(Server):
    """Server on https: probes and requests through Python's ssl with the CA (and a client
    certificate for mutual TLS)."""

    def __init__(self, repo, ca, *extra, client=None):
        self.ctx = ssl.create_default_context(cafile=ca)
        if client:
            self.ctx.load_cert_chain(client[0], client[1])
        super().__init__(repo, *extra)
        # a failing check must not leave the server running
        atexit.register(lambda proc=self.proc: proc.poll() is None and proc.kill())

    def connection(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=self.ctx)


def curl(url, *args):
    """(exit code, HTTP status as curl saw it: "000" for none)."""
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10", *args, url],
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout


def s_client(port, *args, send=""):
    """openssl s_client's output and exit code (it sends `send`, then says goodbye; with
    -ign_eof it waits for the server to close first)."""
    r = openssl("s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost", *args, stdin=send)
    return r.returncode, r.stdout + r.stderr


def served_serial(port, *args):
    """The serial of the certificate the port serves, read by openssl (int; None when none came)."""
    code, out = s_client(port, "-showcerts", *args)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    if not m:
        return None
    r = openssl("x509", "-noout", "-serial", stdin=m.group(0))
    return int(r.stdout.strip().split("=")[1], 16) if r.returncode == 0 else None


def metric(srv, name):
    _, body, _ = srv.request("GET", "/metrics")
    m = re.search(rf"^{name} (\S+)$", body.decode(), re.M)
    return float(m.group(1)) if m else None


def wait_log(srv, text, since, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in srv.output()[since:]:
            return True
        time.sleep(0.05)
    return False


def grpc_js(port, node, *creds):
    r = subprocess.run(["node", os.path.join(GRPC_DIR, "tls_client.js"), f"127.0.0.1:{port}", PROTO_DIR, *creds],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, NODE_PATH=os.path.join(node, "node_modules")))
    if r.returncode:
        raise RuntimeError(f"tls_client.js exited {r.returncode}: {r.stderr[-2000:]}")
    return json.loads(r.stdout)


def start_error(repo, *args):
    """(exit code, output) of a server that must refuse to start."""
    r = subprocess.run([CELER, "serve", "--model-repository", repo, "--http-port", str(free_port()), "--grpc-port", "0",
                        *args], capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def test_start_errors(repo, d):
    p = lambda name: os.path.join(d, name)  # noqa: E731
    code, out = start_error(repo, "--tls-cert", p("srv1.pem"))
    check("--tls-cert without --tls-key refused, naming both", code != 0 and "--tls-cert" in out and "--tls-key" in out,
          out)
    code, out = start_error(repo, "--tls-key", p("srv1.key"))
    check("--tls-key without --tls-cert refused", code != 0 and "--tls-key was given without --tls-cert" in out, out)
    code, out = start_error(repo, "--tls-client-ca", p("ca.pem"))
    check("--tls-client-ca without a certificate refused", code != 0 and "--tls-client-ca needs --tls-cert" in out, out)
    code, out = start_error(repo, "--tls-cert", p("srv1.pem"), "--tls-key", p("srv2.key"))
    check("a key of another certificate refused", code != 0 and "does not belong" in out, out)
    code, out = start_error(repo, "--tls-cert", p("nothing.pem"), "--tls-key", p("srv1.key"))
    check("a missing certificate file refused, naming it", code != 0 and "nothing.pem" in out, out)
    code, out = start_error(repo, "--tls-cert", p("srv1.key"), "--tls-key", p("srv1.key"))
    check("a key given as the certificate refused", code != 0 and "expected PEM certificates" in out, out)


def test_tls(repo, d, node):
    p = lambda name: os.path.join(d, name)  # noqa: E731
    cert, key = p("served.pem"), p("served.key")
    shutil.copy(p("srv1.pem"), cert)
    shutil.copy(p("srv1.key"), key)
    grpc_port, metrics_port = free_port(), free_port()
    srv = TlsServer(repo, p("ca.pem"), "--tls-cert", cert, "--tls-key", key, "--grpc-port", str(grpc_port),
                    "--metrics-port", str(metrics_port))
    url = f"https://127.0.0.1:{srv.port}/v2/health/ready"
    check("curl --cacert: 200", curl(url, "--cacert", p("ca.pem")) == (0, "200"))
    check("curl without the CA: exit 60", curl(url)[0] == 60, curl(url))
    check("curl to localhost (the DNS name): 200", curl(url.replace("127.0.0.1", "localhost"), "--cacert", p("ca.pem"))
          == (0, "200"))
    check("plain HTTP on the TLS port gets no HTTP answer", curl(url.replace("https", "http"))[1] != "200")
    check("the metrics port stays plain HTTP",
          curl(f"http://127.0.0.1:{metrics_port}/metrics")[1] == "200")

    # Python's ssl: urllib with the CA file, an inference checked against NumPy
    x = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32)
    req = urllib.request.Request(f"https://127.0.0.1:{srv.port}/v2/models/mlp/infer",
                                 data=json.dumps(infer_body(x)).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ssl.create_default_context(cafile=p("ca.pem")), timeout=30) as r:
        doc = json.loads(r.read())
    got = np.array(doc["outputs"][0]["data"], dtype=np.float32).reshape(2, 8)
    check("Python ssl (urllib, CA file): mlp infers as NumPy", np.allclose(got, mlp_reference(repo, x), atol=1e-5))

    # versions: the client's floor is lowered, so a refusal is the server's
    for port, what in ((srv.port, "HTTP"), (grpc_port, "gRPC")):
        alpn = ["-alpn", "h2"] if port == grpc_port else []
        for flag in ("-tls1", "-tls1_1"):
            code, out = s_client(port, flag, "-cipher", "DEFAULT@SECLEVEL=0", *alpn)
            check(f"{what}: openssl s_client {flag} refused", code != 0 and "Cipher is (NONE)" in out, out[-600:])
        for flag, version in (("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")):
            code, out = s_client(port, flag, "-CAfile", p("ca.pem"), *alpn)
            check(f"{what}: openssl s_client {flag} served", code == 0 and f"New, {version}" in out
                  and "Verify return code: 0 (ok)" in out, out[-600:])

    # gRPC: ALPN h2 required, no CBC suite in TLS 1.2 (RFC 9113 9.2.2)
    code, out = s_client(grpc_port, "-alpn", "h2", "-CAfile", p("ca.pem"))
    check("gRPC: ALPN h2 agreed", code == 0 and "ALPN protocol: h2" in out, out[-600:])
    code, out = s_client(grpc_port, "-alpn", "http/1.1")
    check("gRPC: a client offering only http/1.1 refused", code != 0 and "no application protocol" in out, out[-600:])
    code, out = s_client(grpc_port, "-CAfile", p("ca.pem"), "-ign_eof")
    check("gRPC: a client offering no ALPN is sent no_application_protocol and closed",
          "no application protocol" in out, out[-600:])
    code, out = s_client(grpc_port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384", "-alpn", "h2")
    check("gRPC: TLS 1.2 CBC suites refused", code != 0 and "Cipher is (NONE)" in out, out[-600:])
    code, out = s_client(srv.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA")
    check("HTTP: the same CBC suite is served there (HTTP/1.1 has no such rule)", code == 0, out[-600:])
    if node:
        r = grpc_js(grpc_port, node, p("ca.pem"))
        want = mlp_reference(repo, np.full((1, 16), 0.5, dtype=np.float32))[0]
        check("grpc-js createSsl(ca): ServerReady", r["ready"]["code"] == 0 and r["ready"]["response"]["ready"], r)
        check("grpc-js createSsl(ca): ModelInfer as NumPy", r["infer"]["code"] == 0
              and np.allclose(r["infer"]["scores"], want, atol=1e-5), r)
        r = grpc_js(grpc_port, node, "-")
        check("grpc-js plaintext on the TLS port: UNAVAILABLE", r["ready"]["code"] == UNAVAILABLE, r)

    # a second gRPC TLS stack: Debian's python3-grpcio (gRPC C core) on a channel kept open across
    # the reload below
    stubs_dir = os.path.join(d, "stubs")
    os.makedirs(stubs_dir, exist_ok=True)
    got = grpc_stubs.load(stubs_dir)
    channel = stub = None
    if got:
        grpc, pb, pb_grpc = got
        creds = grpc.ssl_channel_credentials(root_certificates=open(p("ca.pem"), "rb").read())
        channel = grpc.secure_channel(f"localhost:{grpc_port}", creds)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        check("python3-grpcio over TLS: ServerReady", stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready)

    # reload: the serial before, the files replaced (a chain through an intermediate), SIGHUP
    check("serial before SIGHUP (HTTP)", served_serial(srv.port) == SERIAL1)
    check("serial before SIGHUP (gRPC)", served_serial(grpc_port, "-alpn", "h2") == SERIAL1)
    check("expiry metric = not-after", metric(srv, "celer_tls_cert_expiry_timestamp_seconds") == not_after(cert),
          (metric(srv, "celer_tls_cert_expiry_timestamp_seconds"), not_after(cert)))
    keep = srv.connection()
    keep.request("GET", "/v2/health/ready")
    r = keep.getresponse()
    r.read()
    sock = keep.sock
    check("keep-alive connection open", r.status == 200 and sock is not None)
    shutil.copy(p("srv2.chain"), cert)
    shutil.copy(p("srv2.key"), key)
    mark = len(srv.output())
    srv.proc.send_signal(signal.SIGHUP)
    check("SIGHUP logs the new serial and date", wait_log(srv, "reloaded", mark) and "serial 1002" in srv.output()[mark:],
          srv.output()[mark:])
    check("serial after SIGHUP (HTTP)", served_serial(srv.port, "-CAfile", p("ca.pem")) == SERIAL2)
    check("serial after SIGHUP (gRPC)", served_serial(grpc_port, "-alpn", "h2") == SERIAL2)
    code, out = s_client(srv.port, "-CAfile", p("ca.pem"))
    check("the new chain verifies through its intermediate", code == 0 and "Verify return code: 0 (ok)" in out,
          out[-600:])
    check("expiry metric follows the new certificate",
          metric(srv, "celer_tls_cert_expiry_timestamp_seconds") == not_after(p("srv2.pem")))
    ok = True
    for _ in range(3):
        keep.request("GET", "/v2/health/ready")
        r = keep.getresponse()
        r.read()
        ok = ok and r.status == 200 and keep.sock is sock
    old = int(sock.getpeercert()["serialNumber"], 16)
    check("the keep-alive connection goes on across the reload, on its old session", ok and old == SERIAL1, old)
    keep.close()
    if stub:
        r = stub.ModelInfer(pb.ModelInferRequest(model_name="mlp", inputs=[pb.ModelInferRequest.InferInputTensor(
            name="features", datatype="FP32", shape=[1, 16])], raw_input_contents=[np.zeros(16, np.float32).tobytes()]),
            timeout=10)
        check("python3-grpcio: the channel opened before the reload still infers", len(r.raw_output_contents) == 1)
        channel.close()
    if node:
        r = grpc_js(grpc_port, node, p("ca.pem"))
        check("grpc-js after the reload: ModelInfer", r["infer"]["code"] == 0, r)

    # broken files keep the serving generation, say why, and are counted
    for what, write, reason in (("a key that is not PEM", lambda: open(key, "w").write("garbage\n"), "--tls-key"),
                                ("the key of another certificate", lambda: shutil.copy(p("srv1.key"), key),
                                 "does not belong"),
                                ("an empty certificate file", lambda: open(cert, "w").close(), "--tls-cert")):
        shutil.copy(p("srv2.chain"), cert)
        shutil.copy(p("srv2.key"), key)
        write()
        mark = len(srv.output())
        srv.proc.send_signal(signal.SIGHUP)
        logged = wait_log(srv, "TLS reload failed", mark)
        tail = srv.output()[mark:]
        check(f"SIGHUP with {what}: old certificate kept, the log says why",
              logged and reason in tail and "still serving serial 1002" in tail
              and served_serial(srv.port) == SERIAL2, tail)
    check("reload failures counted", metric(srv, "celer_tls_reload_failures_total") == 3)
    check("the HTTP port still serves", srv.request("GET", "/v2/health/ready")[0] == 200)
    code = srv.stop()
    check("SIGTERM exits 0", code == 0, srv.output()[-1500:])
    check("no sanitizer report", "Sanitizer" not in srv.output() and "runtime error" not in srv.output(),
          srv.output()[-2000:])


def test_mutual(repo, d, node):
    p = lambda name: os.path.join(d, name)  # noqa: E731
    client_ca = p("client_ca.pem")
    shutil.copy(p("ca.pem"), client_ca)
    grpc_port = free_port()
    srv = TlsServer(repo, p("ca.pem"), "--tls-cert", p("srv1.pem"), "--tls-key", p("srv1.key"), "--tls-client-ca",
                    client_ca, "--grpc-port", str(grpc_port), client=(p("cli.pem"), p("cli.key")))
    url = f"https://127.0.0.1:{srv.port}/v2/health/ready"
    ca = ["--cacert", p("ca.pem")]
    for version in ("1.2", "1.3"):
        v = ["--tlsv" + version, "--tls-max", version]
        code, status = curl(url, *ca, *v)
        check(f"mTLS TLS {version}: curl without a client certificate refused in the handshake (no HTTP status)",
              code != 0 and status == "000", (code, status))
        code, status = curl(url, *ca, *v, "--cert", p("self.pem"), "--key", p("self.key"))
        check(f"mTLS TLS {version}: curl with a self-signed certificate refused", code != 0 and status == "000",
              (code, status))
        code, status = curl(url, *ca, *v, "--cert", p("cli2.pem"), "--key", p("cli2.key"))
        check(f"mTLS TLS {version}: curl with a certificate of another CA refused", code != 0 and status == "000",
              (code, status))
        code, status = curl(url, *ca, *v, "--cert", p("srv1.pem"), "--key", p("srv1.key"))
        check(f"mTLS TLS {version}: curl with a CA-signed certificate for servers only (no clientAuth) refused",
              code != 0 and status == "000", (code, status))
        check(f"mTLS TLS {version}: curl --cert/--key signed by the CA: 200",
              curl(url, *ca, *v, "--cert", p("cli.pem"), "--key", p("cli.key")) == (0, "200"))
    status, body, _ = srv.json("POST", "/v2/models/mlp/infer", infer_body(np.zeros((1, 16), np.float32)))
    check("mTLS: Python ssl with the client certificate infers", status == 200, body)
    get = "GET /v2/health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for version in ("-tls1_2", "-tls1_3"):
        code, out = s_client(srv.port, version, "-CAfile", p("ca.pem"), "-ign_eof", send=get)
        check(f"mTLS: openssl s_client {version} without a certificate gets no HTTP answer",
              "HTTP/1.1" not in out, out[-600:])
        code, out = s_client(srv.port, version, "-CAfile", p("ca.pem"), "-cert", p("cli.pem"), "-key", p("cli.key"),
                             "-ign_eof", send=get)
        check(f"mTLS: openssl s_client {version} with the client certificate gets 200", "HTTP/1.1 200" in out,
              out[-600:])
    if node:
        r = grpc_js(grpc_port, node, p("ca.pem"), p("cli.key"), p("cli.pem"))
        check("mTLS gRPC: grpc-js createSsl(ca, key, cert) ModelInfer", r["infer"]["code"] == 0
              and r["ready"]["code"] == 0, r)
        r = grpc_js(grpc_port, node, p("ca.pem"))
        check("mTLS gRPC: grpc-js without a client certificate UNAVAILABLE", r["ready"]["code"] == UNAVAILABLE, r)
        r = grpc_js(grpc_port, node, p("ca.pem"), p("self.key"), p("self.pem"))
        check("mTLS gRPC: grpc-js with a self-signed certificate UNAVAILABLE", r["ready"]["code"] == UNAVAILABLE, r)
    # the client CA reloads: a second CA added, SIGHUP, its client is served
    with open(client_ca, "w") as f:
        f.write(open(p("ca.pem")).read() + open(p("ca2.pem")).read())
    mark = len(srv.output())
    srv.proc.send_signal(signal.SIGHUP)
    wait_log(srv, "reloaded", mark)
    other = ["--cert", p("cli2.pem"), "--key", p("cli2.key")]
    check("mTLS: after SIGHUP a client of the added CA is served", curl(url, *ca, *other) == (0, "200"))
    check("mTLS: and the first CA's client still is", curl(url, *ca, "--cert", p("cli.pem"), "--key", p("cli.key"))
          == (0, "200"))
    if node:
        r = grpc_js(grpc_port, node, p("ca.pem"), p("cli2.key"), p("cli2.pem"))
        check("mTLS gRPC: the added CA's client after SIGHUP", r["infer"]["code"] == 0, r)
    with open(client_ca, "w") as f:
        f.write("not a certificate\n")
    mark = len(srv.output())
    srv.proc.send_signal(signal.SIGHUP)
    check("mTLS: a broken client CA file is refused and logged", wait_log(srv, "TLS reload failed", mark)
          and "--tls-client-ca" in srv.output()[mark:], srv.output()[mark:])
    check("mTLS: the CAs before it stay", curl(url, *ca, *other) == (0, "200"))
    code = srv.stop()
    check("SIGTERM exits 0 (mTLS)", code == 0, srv.output()[-1500:])
    check("no sanitizer report (mTLS)", "Sanitizer" not in srv.output() and "runtime error" not in srv.output(),
          srv.output()[-2000:])


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-tls-")
    try:
        repo = os.path.join(tmp, "repository")
        shutil.copytree(REPO_SRC, repo)
        pki = os.path.join(tmp, "pki")
        os.makedirs(pki)
        make_pki(pki)
        node = node_modules(NODE_PACKAGES, timeout=300)
        check("grpc-js and proto-loader installed (npm)", node is not None)
        test_start_errors(repo, pki)
        test_tls(repo, pki, node)
        test_mutual(repo, pki, node)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
