#!/usr/bin/python3
"""End-to-end: a model whose graph starts with ImageDecoder (opset 20) served over HTTP. The client
sends a PNG or JPEG file's bytes as a UINT8 [n] tensor (binary, as tritonclient does); the answer
is the image as UINT8 [H, W, 3] in BGR, equal to PIL's decode (the ONNX reference). A BMP file is
answered 400 with a message naming BMP, and the server goes on answering.

usage: test_image_decoder.py CELER_BIN EXAMPLE_REPOSITORY (the second is unused)"""
import io
import json
import os
import shutil
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, check, summary  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "pipeline")


def write_model(repo):
    os.makedirs(os.path.join(repo, "decode", "1"))
    node = helper.make_node("ImageDecoder", ["encoded"], ["image"], name="dec", pixel_format="BGR")
    graph = helper.make_graph([node], "decode", [helper.make_tensor_value_info("encoded", TensorProto.UINT8, [-1])],
                              [helper.make_tensor_value_info("image", TensorProto.UINT8, [-1, -1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="e2e")
    model.ir_version = 9
    with open(os.path.join(repo, "decode", "1", "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    # one file per request: its bytes are not a batch
    with open(os.path.join(repo, "decode", "config.pbtxt"), "w") as f:
        f.write('name: "decode"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
                'input [ { name: "encoded" data_type: TYPE_UINT8 dims: [ -1 ] } ]\n'
                'output [ { name: "image" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] } ]\n')


def infer(srv, data):
    header = json.dumps({"inputs": [{"name": "encoded", "datatype": "UINT8", "shape": [len(data)],
                                     "parameters": {"binary_data_size": len(data)}}],
                         "outputs": [{"name": "image", "parameters": {"binary_data": True}}]}).encode()
    status, reply, headers = srv.request("POST", "/v2/models/decode/infer", header + data,
                                         {"Inference-Header-Content-Length": str(len(header))})
    if status != 200:
        return status, reply, None
    hlen = int(headers.get("Inference-Header-Content-Length", "0"))
    doc = json.loads(reply[:hlen])
    shape = doc["outputs"][0]["shape"]
    return status, doc, np.frombuffer(reply[hlen:], np.uint8).reshape(shape)


def main():
    tmp = tempfile.mkdtemp(prefix="celer-e2e-imgdec-")
    repo = os.path.join(tmp, "repository")
    write_model(repo)
    srv = Server(repo)
    for name in ("cat.png", "cat.jpg"):
        data = open(os.path.join(DATA, name), "rb").read()
        want = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1]
        status, doc, got = infer(srv, data)
        check(f"{name}: decoded to [80, 100, 3] BGR as PIL does", status == 200 and got is not None and
              got.shape == want.shape and (got == want).all(), (status, str(doc)[:300]))
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(buf, "BMP")
    status, reply, _ = infer(srv, buf.getvalue())
    check("a BMP file: 400 naming BMP", status == 400 and b"holds a BMP image" in reply, (status, reply[:300]))
    status, _, got = infer(srv, open(os.path.join(DATA, "cat.png"), "rb").read())
    check("answers again after the refusal", status == 200 and got.shape == (80, 100, 3), status)
    check("SIGTERM exits 0", srv.stop() == 0, srv.output()[-2000:])
    shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
