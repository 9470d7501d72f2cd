"""Python stubs of Triton's GRPCInferenceService for the e2e tests, generated at test time from
tests/grpc/proto with grpc_tools.protoc (Debian's python3-grpc-tools) into a temporary folder and
imported from there, on Debian's python3-grpcio.

    got = grpc_stubs.load(tmp)          # None when grpc or the generation failed (a failed check)
    grpc, pb, pb_grpc = got
    stub = pb_grpc.GRPCInferenceServiceStub(grpc_stubs.channel(grpc, port))

to_dict(message) gives a response as Triton's JSON has it, to compare the protocols field by field.
"""
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

from test_server import check, summary

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


def main(prefix, run):
    """A test's main: run(tmp, grpc, pb2, pb2_grpc) in a temporary folder (removed after) once the
    stubs are generated there; the summary's exit code."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        got = load(tmp)
        if got:
            run(tmp, *got)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary()


def channel(grpc, port, options=None):
    """A channel to 127.0.0.1:port once the server's gRPC port answers (it starts listening after
    the HTTP port, which the tests wait for): up to 30 s."""
    ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=options or [])
    grpc.channel_ready_future(ch).result(timeout=30)
    return ch


# 64-bit fields, which protobuf's JSON mapping writes as strings and Triton's JSON as numbers
INT64_KEYS = {"count", "ns", "batch_size", "last_inference", "inference_count", "execution_count", "byte_size", "id"}


def to_dict(message):
    """A message as a dict with every field, proto names, 64-bit integers as ints (as JSON has them)."""
    from google.protobuf import json_format

    def ints(x, key=None):
        if isinstance(x, dict):
            return {k: ints(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [ints(v, key) for v in x]
        if key in INT64_KEYS and isinstance(x, str):
            return int(x)
        return x
    kw = {"preserving_proto_field_name": True}
    try:
        d = json_format.MessageToDict(message, including_default_value_fields=True, **kw)
    except TypeError:  # protobuf >= 5 renamed it
        d = json_format.MessageToDict(message, always_print_fields_with_no_presence=True, **kw)
    return ints(d)
