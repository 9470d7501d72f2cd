"""Python stubs of Triton's GRPCInferenceService for the e2e tests, generated at test time from
tests/grpc/proto with grpc_tools.protoc (Debian's python3-grpc-tools) into a temporary folder and
imported from there, on Debian's python3-grpcio.

    got = grpc_stubs.load(tmp)          # None when grpc or the generation failed (a failed check)
    grpc, pb, pb_grpc = got
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
"""
import importlib
import os
import subprocess
import sys

from test_server import check

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grpc", "proto")


def load(tmp):
    """Imports grpc and the generated grpc_service stubs; (grpc, pb2, pb2_grpc), or None (reported
    as a failed check, so a test never passes without having run)."""
    try:
        grpc = importlib.import_module("grpc")
    except ImportError as e:
        check("import grpc (Debian: python3-grpcio)", False, str(e))
        return None
    r = subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", PROTO_DIR, "--python_out=" + tmp,
                        "--grpc_python_out=" + tmp, "grpc_service.proto", "model_config.proto"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        check("grpc_service stubs generated with grpc_tools.protoc (python3-grpc-tools)", False, r.stderr[-1000:])
        return None
    sys.path.insert(0, tmp)
    return grpc, importlib.import_module("grpc_service_pb2"), importlib.import_module("grpc_service_pb2_grpc")
