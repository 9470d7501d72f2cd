"""The recommendation pipeline's feature code and item scoring (examples/repository/recommend), shared by
bench/fastapi_pipeline.py (the user tower run locally with PyTorch) and bench/fastapi_middleware.py
(the user tower called on an upstream KServe v2 server): numpy only, so that importing it costs
neither of them PyTorch. The item matrix, ids and age sample are read once per process at import
from PIPELINE_REPO (default: examples/repository).
"""
import os
from typing import List, Optional

import numpy as np
from pydantic import BaseModel

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


# Loaded once per worker process at import.
_folder = os.path.join(REPO, "recommend")
ITEMS = np.ascontiguousarray(np.load(os.path.join(_folder, "items.npy")), dtype=np.float32)
ITEM_IDS = np.load(os.path.join(_folder, "item_ids.npy"))
ROW_OF = {int(i): r for r, i in enumerate(ITEM_IDS)}
AGE_BOUNDS = np.quantile(np.load(os.path.join(_folder, "age_sample.npy")), [i / AGE_BINS for i in range(1, AGE_BINS)])


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
