"""The baseline of bench/pipeline_bench.sh: the recommendation pipeline of
examples/repository/recommend written the way a typical team serves it, as a FastAPI service.

    PIPELINE_REPO=DIR /usr/bin/python3 -m uvicorn fastapi_pipeline:app --app-dir bench \
        --host 127.0.0.1 --port 9000 [--workers 2]

DIR is a model repository holding recommend/ (items.npy, item_ids.npy, age_sample.npy) and
user_tower/1/model.onnx (default: examples/repository). POST /recommend takes the same JSON object
as celer's plain form of /v2/models/recommend/infer:

    {"user_id": 42, "age": 31, "income": 52000, "country": "de", "device": "ios", "exclude": [..]}

and answers {"item_ids": [10 ids], "scores": [10 scores]}, best first. What it does is what
recommend/pipeline.yaml declares: a pydantic model of the fields with their defaults, numpy
feature engineering (quantile bins of age, log income standardized, one-hot country and device),
the user tower as a PyTorch MLP holding the ONNX file's weights, then scores against the item
matrix in numpy and a top-k by argpartition that skips the excluded ids.
"""
import os
from typing import List, Optional

import numpy as np
import onnx
import torch
from fastapi import FastAPI
from onnx import numpy_helper
from pydantic import BaseModel
from torch import nn

REPO = os.environ.get(
    "PIPELINE_REPO",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "repository"))
K = 10
AGE_BINS = 8
INCOME_MEAN, INCOME_STD = 10.0, 1.5
COUNTRIES = {c: i for i, c in enumerate(["us", "de", "fr", "gb", "jp"])}
DEVICES = {d: i for i, d in enumerate(["ios", "android", "web"])}


class RecommendRequest(BaseModel):
    user_id: int = 0
    age: Optional[float] = 35.0
    income: Optional[float] = 0.0
    country: Optional[str] = "other"
    device: Optional[str] = "web"
    exclude: List[int] = []


class RecommendResponse(BaseModel):
    item_ids: List[int]
    scores: List[float]


def load_user_tower(path: str) -> nn.Module:
    """Gemm -> Relu -> Gemm (transB=1) from the ONNX initializers into two nn.Linear."""
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in onnx.load(path).graph.initializer}
    fc1 = nn.Linear(w["tower.fc1.weight"].shape[1], w["tower.fc1.weight"].shape[0])
    fc2 = nn.Linear(w["tower.fc2.weight"].shape[1], w["tower.fc2.weight"].shape[0])
    with torch.no_grad():
        fc1.weight.copy_(w["tower.fc1.weight"])
        fc1.bias.copy_(w["tower.fc1.bias"])
        fc2.weight.copy_(w["tower.fc2.weight"])
        fc2.bias.copy_(w["tower.fc2.bias"])
    return nn.Sequential(fc1, nn.ReLU(), fc2).eval()


# Loaded once per worker process at import.
_folder = os.path.join(REPO, "recommend")
ITEMS = np.ascontiguousarray(np.load(os.path.join(_folder, "items.npy")), dtype=np.float32)
ITEM_IDS = np.load(os.path.join(_folder, "item_ids.npy"))
ROW_OF = {int(i): r for r, i in enumerate(ITEM_IDS)}
AGE_BOUNDS = np.quantile(np.load(os.path.join(_folder, "age_sample.npy")), [i / AGE_BINS for i in range(1, AGE_BINS)])
TOWER = load_user_tower(os.path.join(REPO, "user_tower", "1", "model.onnx"))

app = FastAPI(title="recommendation service")


def features(req: RecommendRequest) -> np.ndarray:
    age = 35.0 if req.age is None else req.age
    income = 0.0 if req.income is None or np.isnan(req.income) else max(req.income, 0.0)
    country = COUNTRIES.get("other" if req.country is None else req.country, len(COUNTRIES))
    device = DEVICES.get("web" if req.device is None else req.device, len(DEVICES))
    x = np.zeros(AGE_BINS + 1 + len(COUNTRIES) + 1 + len(DEVICES) + 1, dtype=np.float32)
    x[int(np.searchsorted(AGE_BOUNDS, age, side="right"))] = 1
    x[AGE_BINS] = (np.log1p(np.float32(income)) - INCOME_MEAN) / INCOME_STD
    x[AGE_BINS + 1 + country] = 1
    x[AGE_BINS + 1 + len(COUNTRIES) + 1 + device] = 1
    return x


def top_k(user: np.ndarray, exclude: List[int], k: int = K):
    scores = ITEMS @ user
    rows = [ROW_OF[i] for i in exclude if i in ROW_OF]
    if rows:
        scores[rows] = -np.inf
    best = np.argpartition(-scores, k)[:k]
    best = best[np.lexsort((ITEM_IDS[best], -scores[best]))]  # best first, ties to the lower id
    return ITEM_IDS[best], scores[best]


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/recommend", response_model=RecommendResponse)
def recommend(req: RecommendRequest):
    with torch.no_grad():
        user = TOWER(torch.from_numpy(features(req)).unsqueeze(0))[0].numpy()
    ids, scores = top_k(user, req.exclude)
    return {"item_ids": ids.tolist(), "scores": scores.tolist()}
