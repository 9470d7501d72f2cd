#!/usr/bin/env bash
# Starts `celer serve` on the example repository (examples/repository) and prints a request that
# works against it. Build first (see README). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${CELER_HTTP_PORT:-8000}
cat <<MSG
In another terminal:
  curl -s localhost:$PORT/v2/models/mlp/infer -d '{"inputs":[{"name":"features","shape":[1,16],"datatype":"FP32","data":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6]}]}'
  curl -s localhost:$PORT/v2/models/recommend/infer -d '{"age": 31, "income": 52000, "country": "de", "device": "ios", "exclude": [100007]}'
  curl -s localhost:$PORT/v2/models/classify/infer -H 'Content-Type: image/jpeg' --data-binary @tests/data/pipeline/cat.jpg
  curl -s localhost:$PORT/v2/models/mlp
  curl -s localhost:$PORT/metrics
  curl -s localhost:$PORT/v2/openapi.json
In a browser: http://localhost:$PORT/docs (Swagger UI, loaded from its CDN)
MSG
exec build/celer serve --model-repository examples/repository --http-port "$PORT" --docs "$@"
