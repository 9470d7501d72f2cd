"""The baseline: the recommendation MLP served the way a typical team serves it with FastAPI.

    /usr/bin/python3 -m uvicorn fastapi_service:app --host 127.0.0.1 --port 9000 [--workers 2]

(run from bench/, or with --app-dir bench). Global model loaded at import, pydantic bodies with
List[float] features, JSON out. Weights come from a fixed seed, so every worker process, and
make_bench_models.py exporting the same model for celer, hold identical numbers.
"""
from typing import List

import torch
from fastapi import FastAPI
from pydantic import BaseModel
from torch import nn

SEED = 1000


def build_model() -> nn.Module:
    """The 1000 -> 512 -> 256 -> 64 recommendation MLP (same seed as scripts/export_models.py)."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Linear(1000, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 64)
    )
    return model.eval()


class PredictRequest(BaseModel):
    features: List[float]


class PredictBatchRequest(BaseModel):
    instances: List[List[float]]


app = FastAPI(title="recommendation MLP")
model = build_model()


@app.get("/health")
def health():
    return {"status": "ok"}


@app.post("/predict")
def predict(req: PredictRequest):
    with torch.no_grad():
        x = torch.tensor(req.features, dtype=torch.float32).unsqueeze(0)
        scores = model(x)[0]
    return {"scores": scores.tolist()}


@app.post("/predict_batch")
def predict_batch(req: PredictBatchRequest):
    with torch.no_grad():
        scores = model(torch.tensor(req.instances, dtype=torch.float32))
    return {"scores": scores.tolist()}
