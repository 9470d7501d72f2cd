"""The baseline of bench/middleware_bench.sh (issue 22): two example pipelines written the usual way,
as a FastAPI middleware that pre-processes, calls the model on an upstream KServe v2 server
(Triton in production; here a `celer serve`) and post-processes.

    UPSTREAM_URL=http://127.0.0.1:8000 /usr/bin/python3 -m uvicorn fastapi_middleware:app \
        --app-dir bench --host 127.0.0.1 --port 9000 [--workers 2]

Each route takes the body celer's pipeline takes in its plain form and answers as celer does:
- POST /classify (examples/repository/classify): {"image": "<base64 of a JPEG or PNG>"} ->
  {"labels": [5], "probabilities": [5], "class_ids": [5]}, the likeliest first. PIL decodes and
  resizes the shorter side to 72 (bilinear; PIL antialiases when it shrinks and celer's resize does
  not, so probabilities differ from celer's by about 1e-3), center crop 64 (torchvision's offsets),
  CHW, 1/255 and ImageNet normalization in numpy; tiny_cnn upstream; softmax and top-5 with
  labels.txt in numpy.
- POST /recommend (examples/repository/recommend): {"user_id", "age", "income", "country",
  "device", "exclude"} -> {"item_ids": [10], "scores": [10]}: the feature engineering and top-k of
  bench/recommend_features.py (the ones bench/fastapi_pipeline.py runs), user_tower upstream.
The upstream call: an httpx.AsyncClient per worker (a keep-alive pool), JSON tensors by default,
Triton's binary tensors with UPSTREAM_BINARY=1. Env: UPSTREAM_URL, UPSTREAM_BINARY (0),
UPSTREAM_POOL (connections per worker, 64), PIPELINE_REPO (examples/repository: labels.txt, the
item matrix).
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

from recommend_features import REPO, RecommendRequest, RecommendResponse, features, top_k

UPSTREAM = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8000").rstrip("/")
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


# ---- classify
def classify_pre(req: ClassifyRequest) -> np.ndarray:
    """Encoded picture -> [1, 3, 64, 64] float32, normalized."""
    img = Image.open(io.BytesIO(base64.b64decode(req.image))).convert("RGB")
    w, h = img.size
    s = 72 / min(w, h)
    size = (72, int(round(h * s))) if w <= h else (int(round(w * s)), 72)
    img = img.resize(size, Image.BILINEAR)
    left, top = int(round((size[0] - 64) / 2.0)), int(round((size[1] - 64) / 2.0))
    img = img.crop((left, top, left + 64, top + 64))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    return ((x - MEAN) / STD)[None].astype(np.float32)


def classify_post(logits: np.ndarray, req: ClassifyRequest) -> dict:
    """[1, 10] logits -> the top 5."""
    e = np.exp(logits[0] - logits[0].max())
    p = e / e.sum()
    ids = np.argsort(-p, kind="stable")[:5]
    return {"labels": [LABELS[i] for i in ids], "probabilities": [float(p[i]) for i in ids],
            "class_ids": [int(i) for i in ids]}


# ---- recommend
def recommend_pre(req: RecommendRequest) -> np.ndarray:
    return features(req)[None]


def recommend_post(user: np.ndarray, req: RecommendRequest) -> dict:
    ids, scores = top_k(user[0].copy(), req.exclude)
    return {"item_ids": ids.tolist(), "scores": scores.tolist()}


# pipeline -> (request model, pre, upstream model, its input name, post)
PIPELINES = {
    "classify": (ClassifyRequest, classify_pre, "tiny_cnn", "image", classify_post),
    "recommend": (RecommendRequest, recommend_pre, "user_tower", "features", recommend_post),
}


# ---- the upstream call
def upstream_request(input_name: str, x: np.ndarray):
    """(body, headers) of the KServe v2 inference request for one tensor: JSON, or Triton's binary."""
    inp = {"name": input_name, "shape": list(x.shape), "datatype": "FP32"}
    if not BINARY:
        return json.dumps({"inputs": [dict(inp, data=x.ravel().tolist())]}).encode(), \
            {"Content-Type": "application/json"}
    head = json.dumps({"inputs": [dict(inp, parameters={"binary_data_size": x.nbytes})],
                       "parameters": {"binary_data_output": True}}).encode()
    return head + x.astype("<f4").tobytes(), {"Content-Type": "application/octet-stream",
                                              "Inference-Header-Content-Length": str(len(head))}


def upstream_output(status: int, headers, body: bytes) -> np.ndarray:
    """The first output of a KServe v2 answer (JSON or binary) as float32."""
    if status != 200:
        raise HTTPException(502, f"upstream answered {status}: {body[:200]!r}")
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


async def run(pipeline: str, req):
    _, pre, model, input_name, post = PIPELINES[pipeline]
    try:
        x = pre(req)
    except Exception as e:  # noqa: BLE001 (PIL raises many kinds)
        raise HTTPException(400, f"{pipeline}: {e}")
    body, headers = upstream_request(input_name, x)
    r = await client.post(f"/v2/models/{model}/infer", content=body, headers=headers)
    return post(upstream_output(r.status_code, r.headers, r.content), req)


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/classify", response_model=ClassifyResponse)
async def classify(req: ClassifyRequest):
    return await run("classify", req)


@app.post("/recommend", response_model=RecommendResponse)
async def recommend(req: RecommendRequest):
    return await run("recommend", req)
