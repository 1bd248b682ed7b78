"""The baseline: the iris model served "the naive way", to measure the baked service against.

This is deliberately how a first version usually looks, and what the template improves on:

- metrics from a ``BaseHTTPMiddleware``, labelled by the raw URL path (unbounded label values,
  and an extra task and memory stream per request);
- a synchronous ``def`` endpoint, so FastAPI hops to its thread pool for every request;
- ``List[List[float]]`` validated by pydantic, then a NumPy array built from it;
- the same model as the baked demo (StandardScaler + LogisticRegression fitted on sklearn's iris);
- one uvicorn process with its defaults (access log included).

Run: ``python bench/naive_app.py --port 8000`` (needs fastapi, uvicorn, prometheus_client and
scikit-learn, all of which the baked default project installs).
"""

from __future__ import annotations

import argparse
import time
from typing import List  # noqa: UP035 - written the way the seed wrote it

import numpy as np
import uvicorn
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

REQUESTS = Counter("requests_total", "Requests", ["method", "path", "status"])
LATENCY = Histogram("request_latency_seconds", "Latency", ["method", "path"])

iris = load_iris()
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
model.fit(iris.data, iris.target_names[iris.target])

app = FastAPI(title="naive iris")


@app.middleware("http")
async def metrics(request: Request, call_next):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    response = await call_next(request)
    LATENCY.labels(request.method, request.url.path).observe(time.perf_counter() - started)
    REQUESTS.labels(request.method, request.url.path, response.status_code).inc()
    return response


class PredictRequest(BaseModel):
    instances: List[List[float]]  # noqa: UP006


class PredictResponse(BaseModel):
    predictions: List[str]  # noqa: UP006


@app.get("/health/ready")
def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict", response_model=PredictResponse)
def predict(body: PredictRequest) -> PredictResponse:
    rows = np.array(body.instances)
    return PredictResponse(predictions=[str(label) for label in model.predict(rows)])


@app.get("/metrics")
def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    uvicorn.run(app, host=options.host, port=options.port)
