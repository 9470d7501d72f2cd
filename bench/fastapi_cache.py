"""The baseline of bench/cache_bench.sh: the recommendation MLP of bench/fastapi_service.py behind
a Redis result cache, the way a typical team adds one to a FastAPI service.

    CACHE_REDIS_URL=redis://127.0.0.1:6379/0 /usr/bin/python3 -m uvicorn fastapi_cache:app \
        --app-dir bench --host 127.0.0.1 --port 9000 [--workers 2]

POST /predict takes the same body as fastapi_service.py, {"features": [1000 floats]}, and answers
{"scores": [64 floats]}. The key is "predict:" + the SHA-256 of the raw body bytes; the value is
the JSON response, stored with SET ... EX CACHE_TTL_SECONDS (default 600). Responses carry
X-Cache: hit (the bytes came from Redis) or miss (computed, then stored).

The cache is looked up before the body is parsed, so a hit costs no JSON decoding, no pydantic
validation and no torch: one SHA-256, one GET over the async client's connection pool (redis-py's
redis.asyncio, one pool per worker process), and the stored bytes written back as they are. A miss
validates the body with the same pydantic model as fastapi_service.py, runs the same seeded MLP in
the thread pool (so the event loop keeps serving hits meanwhile), then stores the answer.
"""
import hashlib
import json
import os

import redis.asyncio as aioredis
import torch
from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from fastapi_service import PredictRequest, model  # the same seeded MLP, loaded once at import

REDIS_URL = os.environ.get("CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")
TTL_SECONDS = int(os.environ.get("CACHE_TTL_SECONDS", "600"))

app = FastAPI(title="recommendation MLP, Redis cache")
cache = aioredis.from_url(REDIS_URL)  # connects lazily; a pool per worker process


@app.on_event("shutdown")
async def close_cache():
    await cache.close()


@app.get("/health")
def health():
    return {"status": "ok"}


def infer(features):
    with torch.no_grad():
        x = torch.tensor(features, dtype=torch.float32).unsqueeze(0)
        return model(x)[0].tolist()


@app.post("/predict")
async def predict(request: Request):
    body = await request.body()
    key = "predict:" + hashlib.sha256(body).hexdigest()
    cached = await cache.get(key)
    if cached is not None:
        return Response(cached, media_type="application/json", headers={"X-Cache": "hit"})
    try:
        req = PredictRequest.parse_raw(body)
    except ValidationError as e:  # what FastAPI answers when it parses the body itself
        raise HTTPException(status_code=422, detail=e.errors())
    scores = await run_in_threadpool(infer, req.features)
    payload = json.dumps({"scores": scores}).encode()
    await cache.set(key, payload, ex=TTL_SECONDS)
    return Response(payload, media_type="application/json", headers={"X-Cache": "miss"})
