#!/usr/bin/python3
"""End-to-end: grpc.health.v1 as Kubernetes `grpc:` probes and grpc-health-probe call it, from
Debian's python3-grpcio (which ships no grpc_health module). The stub is generated at test time
into a temporary folder with grpc_tools.protoc from Debian's grpc-proto
(/usr/share/grpc-proto/grpc/health/v1/health.proto; Triton's copy in tests/grpc/proto when that
package is missing). A probe passes only on SERVING, so anything a model or the server cannot serve
must answer otherwise: Check("") by the server's readiness, Check(model) by that model's, an
unknown name NOT_FOUND (the health spec), an unloaded model NOT_FOUND or NOT_SERVING, a model that
failed to load NOT_SERVING (and the server with it). Also a deadline, one channel across many
calls (sequential and concurrent), and Watch, which celer does not implement: UNIMPLEMENTED.
If grpc cannot be imported or the stub generated, the test fails: it never passes without having run.

usage: test_grpc_health.py CELER_BIN EXAMPLE_REPOSITORY"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, free_port, summary  # noqa: E402

CELER, REPO_SRC = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIRS = ["/usr/share/grpc-proto/grpc/health/v1", os.path.join(HERE, "..", "grpc", "proto")]
WATCH = "/grpc.health.v1.Health/Watch"


def health_stub(tmp):
    """Imports grpc and a health stub generated into `tmp`; (grpc, pb2, pb2_grpc) or None (reported)."""
    try:
        grpc = importlib.import_module("grpc")
    except ImportError as e:
        check("import grpc (Debian: python3-grpcio)", False, str(e))
        return None
    proto_dir = next((d for d in PROTO_DIRS if os.path.isfile(os.path.join(d, "health.proto"))), None)
    # -I at the v1 folder itself: a generated grpc/health/v1 package would shadow grpcio's `grpc`
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir or ".", "--python_out=" + tmp,
                        "--grpc_python_out=" + tmp, "health.proto"], capture_output=True, text=True, timeout=60)
    ok = proto_dir is not None and r.returncode == 0
    check("health stub generated with grpc_tools.protoc (python3-grpc-tools, grpc-proto)", ok,
          f"{proto_dir}: {r.stderr[-1000:]}")
    if not ok:
        return None
    sys.path.insert(0, tmp)
    return grpc, importlib.import_module("health_pb2"), importlib.import_module("health_pb2_grpc")


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-health-")
    try:
        return run(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp):
    got = health_stub(tmp)
    if not got:
        return summary()
    grpc, pb2, pb2_grpc = got
    SERVING, NOT_SERVING = pb2.HealthCheckResponse.SERVING, pb2.HealthCheckResponse.NOT_SERVING

    def outcome(stub, service, **kw):
        """The status of Check(service), or the gRPC code of its failure."""
        try:
            return stub.Check(pb2.HealthCheckRequest(service=service), timeout=kw.get("timeout", 10)).status
        except grpc.RpcError as e:
            return e.code()

    repo = os.path.join(tmp, "repository")
    shutil.copytree(REPO_SRC, repo)
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as channel:
            stub = pb2_grpc.HealthStub(channel)
            check('Check("") SERVING (the server is ready)', outcome(stub, "") == SERVING, outcome(stub, ""))
            check('Check("inference.GRPCInferenceService") SERVING',
                  outcome(stub, "inference.GRPCInferenceService") == SERVING)
            check('Check("mlp") SERVING', outcome(stub, "mlp") == SERVING, outcome(stub, "mlp"))
            try:
                stub.Check(pb2.HealthCheckRequest(service="no_such_model"), timeout=10)
                check("Check(unknown) NOT_FOUND", False, "answered")
            except grpc.RpcError as e:
                check("Check(unknown) NOT_FOUND, the message names it",
                      e.code() == grpc.StatusCode.NOT_FOUND and "no_such_model" in (e.details() or ""),
                      f"{e.code()} {e.details()!r}")

            # deadlines (grpc-timeout): Kubernetes' default probe timeout (1 s) is met; one that
            # passed before the call is DEADLINE_EXCEEDED; deadlines of 1 ns to 100 us race the
            # answer (the client's timer or the server's check may win): SERVING or
            # DEADLINE_EXCEEDED, nothing else, and the channel goes on serving
            check("Check with a 1 s deadline SERVING", outcome(stub, "", timeout=1) == SERVING)
            check("Check with a passed deadline DEADLINE_EXCEEDED",
                  outcome(stub, "", timeout=-1) == grpc.StatusCode.DEADLINE_EXCEEDED, outcome(stub, "", timeout=-1))
            tiny = [outcome(stub, "mlp", timeout=t) for t in (1e-9, 1e-7, 1e-6, 1e-5, 1e-4) for _ in range(20)]
            check("Check with deadlines of 1 ns to 100 us: SERVING or DEADLINE_EXCEEDED",
                  all(o in (SERVING, grpc.StatusCode.DEADLINE_EXCEEDED) for o in tiny), {str(o) for o in tiny})
            check("the channel serves after the deadlines", outcome(stub, "mlp") == SERVING)

            # one channel across many calls: 500 one after another, then 64 at once
            seq = [outcome(stub, "mlp" if i % 2 else "") for i in range(500)]
            check("500 calls on one channel all SERVING", seq.count(SERVING) == 500,
                  {str(s) for s in seq if s != SERVING})
            futures = [stub.Check.future(pb2.HealthCheckRequest(service="identity"), timeout=30) for _ in range(64)]
            statuses = []
            for f in futures:
                try:
                    statuses.append(f.result().status)
                except grpc.RpcError as e:
                    statuses.append(e.code())
            check("64 concurrent calls on one channel all SERVING", statuses.count(SERVING) == 64,
                  {str(s) for s in statuses if s != SERVING})

            # Watch is not in celer's RPC table (Triton's health.proto leaves it out too)
            watch = channel.unary_stream(WATCH, request_serializer=pb2.HealthCheckRequest.SerializeToString,
                                         response_deserializer=pb2.HealthCheckResponse.FromString)
            try:
                first = next(iter(watch(pb2.HealthCheckRequest(service=""), timeout=10)))
                check("Watch UNIMPLEMENTED", False, f"answered {first}")
            except grpc.RpcError as e:
                check("Watch UNIMPLEMENTED, the message names the served services",
                      e.code() == grpc.StatusCode.UNIMPLEMENTED and "grpc.health.v1.Health" in (e.details() or ""),
                      f"{e.code()} {e.details()!r}")

            # an unloaded model fails its probe (NOT_FOUND, as celer answers for a model it no longer
            # serves, or NOT_SERVING); the server stays SERVING (an unload is no failure); a load
            # brings the model back
            status, body, _ = srv.request("POST", "/v2/repository/models/mlp/unload", b"{}")
            check("POST .../mlp/unload 200", status == 200, (status, body))
            after = outcome(stub, "mlp")
            check('Check("mlp") of the unloaded model is NOT_FOUND or NOT_SERVING',
                  after in (grpc.StatusCode.NOT_FOUND, NOT_SERVING), after)
            check('Check("") SERVING after an unload', outcome(stub, "") == SERVING, outcome(stub, ""))
            check('Check("identity") SERVING after mlp was unloaded', outcome(stub, "identity") == SERVING)
            status, body, _ = srv.request("POST", "/v2/repository/models/mlp/load", b"{}")
            check("POST .../mlp/load 200", status == 200, (status, body))
            check('Check("mlp") SERVING once loaded again', outcome(stub, "mlp") == SERVING, outcome(stub, "mlp"))
    finally:
        check("SIGTERM exits 0", srv.stop() == 0, srv.output()[-2000:])

    # a model that failed to load: NOT_SERVING for it and for the server (what a readiness probe
    # on "" must see), while the models that loaded still pass
    os.makedirs(os.path.join(repo, "broken", "1"))
    with open(os.path.join(repo, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"not an onnx model")
    gport = free_port()
    srv = Server(repo, "--grpc-port", str(gport), "--grpc-address", "127.0.0.1")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{gport}") as channel:
            stub = pb2_grpc.HealthStub(channel)
            check('Check("broken") NOT_SERVING (it failed to load)', outcome(stub, "broken") == NOT_SERVING,
                  outcome(stub, "broken"))
            check('Check("") NOT_SERVING while a model failed to load', outcome(stub, "") == NOT_SERVING,
                  outcome(stub, ""))
            check('Check("mlp") SERVING beside the broken model', outcome(stub, "mlp") == SERVING)
    finally:
        check("SIGTERM exits 0 (broken model)", srv.stop() == 0, srv.output()[-2000:])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
