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

import onnx
import torch
from fastapi import FastAPI
from onnx import numpy_helper
from torch import nn

# the pydantic models, the numpy feature engineering and the top-k (shared with fastapi_middleware.py)
from recommend_features import REPO, RecommendRequest, RecommendResponse, features, top_k


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


# Loaded once per worker process at import (the item data: recommend_features).
TOWER = load_user_tower(os.path.join(REPO, "user_tower", "1", "model.onnx"))

app = FastAPI(title="recommendation service")


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/recommend", response_model=RecommendResponse)
def recommend(req: RecommendRequest):
    with torch.no_grad():
        user = TOWER(torch.from_numpy(features(req)).unsqueeze(0))[0].numpy()
    ids, scores = top_k(user, req.exclude)
    return {"item_ids": ids.tolist(), "scores": scores.tolist()}
