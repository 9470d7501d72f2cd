"""The baseline of bench/middleware_bench.sh (issue 22): the `classify` pipeline of
examples/repository/classify written the usual way, as a FastAPI middleware in front of a KServe v2
server that runs the model (Triton in production; here a `celer serve` serving tiny_cnn).

    UPSTREAM_URL=http://127.0.0.1:8000 /usr/bin/python3 -m uvicorn fastapi_middleware:app \
        --app-dir bench --host 127.0.0.1 --port 9000 [--workers 2]

POST /classify takes the body celer's classify pipeline takes in its plain form, {"image": "<base64
of a JPEG or PNG>"}, and answers as celer does: {"labels": [5], "probabilities": [5],
"class_ids": [5]}, the likeliest first. What it does is what classify/pipeline.yaml declares:
decode with PIL, resize the shorter side to 72 (PIL bilinear, which antialiases when it shrinks:
celer's resize does not, so probabilities differ from celer's by about 1e-3), center crop 64
(torchvision's offsets), CHW, scale by 1/255, ImageNet normalization in numpy; then one call to the
upstream's tiny_cnn over HTTP with an httpx.AsyncClient (a keep-alive pool per worker), as JSON by
default or with Triton's binary tensors with UPSTREAM_BINARY=1; then softmax and top-5 with
labels.txt in numpy. Env: UPSTREAM_URL, UPSTREAM_MODEL (tiny_cnn), UPSTREAM_BINARY (0),
UPSTREAM_POOL (connections per worker, 64), PIPELINE_REPO (the folder of classify/labels.txt;
default examples/repository).
"""
import base64
import io
import json
import os
from typing import List

import httpx
import numpy as np
from fastapi import FastAPI, HTTPException
from PIL import Image
from pydantic import BaseModel

REPO = os.environ.get(
    "PIPELINE_REPO",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "repository"))
UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8000").rstrip("/")
MODEL = os.environ.get("UPSTREAM_MODEL", "tiny_cnn")
BINARY = os.environ.get("UPSTREAM_BINARY", "0") == "1"
POOL = int(os.environ.get("UPSTREAM_POOL", "64"))
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
with open(os.path.join(REPO, "classify", "labels.txt")) as f:
    LABELS = [line.rstrip("\n") for line in f if line.strip()]


class ClassifyRequest(BaseModel):
    image: str  # base64 of the encoded picture


class ClassifyResponse(BaseModel):
    labels: List[str]
    probabilities: List[float]
    class_ids: List[int]


def preprocess(data: bytes) -> np.ndarray:
    """Encoded picture -> [1, 3, 64, 64] float32, normalized."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    s = 72 / min(w, h)
    size = (72, int(round(h * s))) if w <= h else (int(round(w * s)), 72)
    img = img.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - 64) / 2.0)), int(round((size[1] - 64) / 2.0))
    img = img.crop((left, top, left + 64, top + 64))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    return ((x - MEAN) / STD)[None].astype(np.float32)


def postprocess(logits: np.ndarray) -> dict:
    """[10] logits -> the top 5 as ClassifyResponse's fields."""
    e = np.exp(logits - logits.max())
    p = e / e.sum()
    ids = np.argsort(-p, kind="stable")[:5]
    return {"labels": [LABELS[i] for i in ids], "probabilities": [float(p[i]) for i in ids],
            "class_ids": [int(i) for i in ids]}


def upstream_request(x: np.ndarray):
    """(body, headers) of the KServe v2 inference request for the tensor: JSON, or Triton's binary."""
    inp = {"name": "image", "shape": list(x.shape), "datatype": "FP32"}
    if not BINARY:
        return json.dumps({"inputs": [dict(inp, data=x.ravel().tolist())]}).encode(), \
            {"Content-Type": "application/json"}
    head = json.dumps({"inputs": [dict(inp, parameters={"binary_data_size": x.nbytes})],
                       "parameters": {"binary_data_output": True}}).encode()
    return head + x.astype("<f4").tobytes(), {"Content-Type": "application/octet-stream",
                                              "Inference-Header-Content-Length": str(len(head))}


def upstream_logits(status: int, headers, body: bytes) -> np.ndarray:
    if status != 200:
        raise HTTPException(502, f"upstream {MODEL} answered {status}: {body[:200]!r}")
    n = headers.get("inference-header-content-length")
    doc = json.loads(body[:int(n)] if n is not None else body)
    out = doc["outputs"][0]
    if n is not None:
        return np.frombuffer(body[int(n):], dtype="<f4").reshape(out["shape"])
    return np.array(out["data"], dtype=np.float32).reshape(out["shape"])


app = FastAPI()
client: httpx.AsyncClient = None  # one pool per worker process, made at startup


@app.on_event("startup")
async def startup():
    global client
    client = httpx.AsyncClient(base_url=UPSTREAM, timeout=30.0,
                               limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL))


@app.on_event("shutdown")
async def shutdown():
    await client.aclose()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/classify", response_model=ClassifyResponse)
async def classify(req: ClassifyRequest):
    try:
        x = preprocess(base64.b64decode(req.image))
    except Exception as e:  # noqa: BLE001 (PIL raises many kinds)
        raise HTTPException(400, f"image: {e}")
    body, headers = upstream_request(x)
    r = await client.post(f"/v2/models/{MODEL}/infer", content=body, headers=headers)
    return postprocess(upstream_logits(r.status_code, r.headers, r.content)[0])
