"""Real models a data scientist brings, served by a booted baked service over real HTTP.

Each model is trained in the test from data scikit-learn ships or generates, saved as the
variant's artifact, and served with ``APP_MODEL_PATH``. Every answer is compared with the
model's own in-process output, computed by the training script in the same run:

- sklearn: a DataFrame pipeline (numeric and string categorical columns, string classes), a
  regressor, a pipeline that refuses some inputs (Box-Cox on non-positive values) and one whose
  output turns non-finite (a log transform: a 422 for the row, not a 500);
- onnx: a probabilistic classifier exported with skl2onnx, the DataFrame pipeline exported with
  one input per column (strings included; once with no metadata file, its categories read from
  the graph), a LightGBM classifier exported with onnxmltools, a regressor, one with two values
  per row, KMeans clusters, and a graph whose only output is ``[batch, classes]`` scores
  (refused at start).

Schemathesis with every check and no allowance runs against the service that serves the DataFrame
pipeline.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Baked,
    Service,
    baked_with,
    install_project,
    run,
    run_schemathesis,
    start_service,
)

pytestmark = pytest.mark.slow

# What each framework's training script needs beyond the baked project's own dependencies.
TRAINING_EXTRAS = {
    "sklearn": [],
    "onnx": ["pandas>=2.1", "lightgbm>=4", "onnxmltools>=1.12", "onnx>=1.16"],
}

COMMON = r'''
import json, sys
from pathlib import Path
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris, make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
expected = {}


def customers(n, seed):
    """A churn table: numbers, two string categories, string classes."""
    x, y = make_classification(n_samples=n, n_features=2, n_informative=2, n_redundant=0,
                               random_state=seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": np.round(40 + 10 * x[:, 0], 1),
        "income": np.round(50 + 15 * x[:, 1], 2),
        "plan": np.where(y == 1, rng.choice(["pro", "team"], n), rng.choice(["free", "pro"], n)),
        "region": rng.choice(["eu", "us", "apac"], n),
    })
    return frame, np.where(y == 1, "churn", "stay")


frame, target = customers(400, 0)
churn = make_pipeline(
    ColumnTransformer([
        ("numbers", StandardScaler(), ["age", "income"]),
        ("categories", OneHotEncoder(), ["plan", "region"]),
    ]),
    LogisticRegression(max_iter=1000),
).fit(frame, target)
records = frame.head(5).to_dict(orient="records")
probe = pd.DataFrame(records)


def answer(model, rows, proba=True):
    result = {"records": rows, "predictions": model.predict(pd.DataFrame(rows)).tolist()}
    if proba:
        result["probabilities"] = model.predict_proba(pd.DataFrame(rows)).tolist()
    return result
'''

SKLEARN_MODELS = (
    COMMON
    + r"""
import skops.io
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.preprocessing import FunctionTransformer, PowerTransformer

skops.io.dump(churn, out / "churn.skops")
expected["churn"] = answer(churn, records)

x, y = load_diabetes(return_X_y=True)
regressor = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
skops.io.dump(regressor, out / "diabetes.skops")
expected["diabetes"] = {"rows": x[:5].tolist(), "predictions": regressor.predict(x[:5]).tolist()}

iris = load_iris()
positive = make_pipeline(PowerTransformer(method="box-cox"), LogisticRegression(max_iter=500))
positive.fit(iris.data, iris.target_names[iris.target])
skops.io.dump(positive, out / "positive.skops")
# Box-Cox refuses what it never saw: a value that is not strictly positive.
expected["positive"] = {"good": iris.data[:2].tolist(), "bad": [[5.1, -3.5, 1.4, 0.2]]}

logs = make_pipeline(FunctionTransformer(np.log), LinearRegression()).fit(x + 1, y)
skops.io.dump(logs, out / "logs.skops")
# log(0) is -inf: the made-up example row of zeros would fail warm-up. The sidecar names the
# columns of this plain matrix and gives a real example.
names = load_diabetes().feature_names
features = [{"name": n, "example": float(v)} for n, v in zip(names, x[0] + 1)]
(out / "logs.json").write_text(json.dumps({"version": "logs-1", "features": features}))
expected["logs"] = {"good": (x[:1] + 1).tolist(), "bad": [[0.0] * x.shape[1]]}

(out / "expected.json").write_text(json.dumps(expected))
"""
)

ONNX_MODELS = (
    COMMON
    + r"""
import lightgbm
import onnx
from sklearn.cluster import KMeans
import onnxruntime
from onnx import TensorProto, helper
from onnxmltools import convert_lightgbm
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx


def save(name, model):
    (out / f"{name}.onnx").write_bytes(model.SerializeToString())


iris = load_iris()
x = iris.data.astype(np.float32)
labels = iris.target_names[iris.target]
flowers = LogisticRegression(max_iter=1000).fit(x, labels)
save("flowers", to_onnx(flowers, x[:1], options={"zipmap": False}, target_opset=17))
expected["flowers"] = {
    "rows": x[:6:2].tolist(),
    "predictions": flowers.predict(x[:6:2]).tolist(),
    "probabilities": flowers.predict_proba(x[:6:2]).tolist(),
}

# The DataFrame pipeline, one graph input per column; skl2onnx takes float32 numbers.
churn32 = make_pipeline(
    ColumnTransformer([
        ("numbers", StandardScaler(), ["age", "income"]),
        ("categories", OneHotEncoder(), ["plan", "region"]),
    ]),
    LogisticRegression(max_iter=1000),
).fit(frame.astype({"age": "float32", "income": "float32"}), target)
sample = frame.head(1).astype({"age": "float32", "income": "float32"})
save("churn", to_onnx(churn32, sample, options={"zipmap": False}, target_opset=17))
expected["churn"] = answer(churn32, records)
# The graph does not say which categories its encoder knows: the sidecar file does.
sidecar = {"features": ["age", "income"] + [
    {"name": column, "categories": sorted(set(frame[column]))} for column in ("plan", "region")
]}
(out / "churn.json").write_text(json.dumps(sidecar))

booster = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1).fit(x, iris.target)
save("lightgbm", convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, 4]))],
                                  target_opset=15))
session = onnxruntime.InferenceSession((out / "lightgbm.onnx").read_bytes())
labels_out, probabilities_out = session.run(None, {"input": x[:6:2]})
expected["lightgbm"] = {
    "rows": x[:6:2].tolist(),
    "predictions": labels_out.tolist(),
    "probabilities": [[row[c] for c in range(3)] for row in probabilities_out],
    "in_process": booster.predict(x[:6:2]).tolist(),
}

xd, yd = load_diabetes(return_X_y=True)
ridge = Ridge().fit(xd.astype(np.float32), yd)
save("ridge", to_onnx(ridge, xd[:1].astype(np.float32), target_opset=17))
expected["ridge"] = {
    "rows": xd[:3].tolist(),
    "predictions": ridge.predict(xd[:3].astype(np.float32)).tolist(),
}

# The same graph with no metadata file: the categories are read from its encoder nodes.
save("open", to_onnx(churn32, sample, options={"zipmap": False}, target_opset=17))

# Two values per row, named in the metadata file (a graph cannot tell them from raw scores).
two = np.column_stack([yd, 0.5 * yd]).astype(np.float32)
ridge2 = Ridge().fit(xd.astype(np.float32), two)
save("ridge2", to_onnx(ridge2, xd[:1].astype(np.float32), target_opset=17))
(out / "ridge2.json").write_text(json.dumps({"outputs": ["progression", "half"]}))
expected["ridge2"] = {
    "rows": xd[:3].tolist(),
    "predictions": ridge2.predict(xd[:3].astype(np.float32)).tolist(),
}

# Clusters: integer labels that only the metadata file can say are cluster ids.
clusters = KMeans(n_clusters=3, n_init=3, random_state=0).fit(x)
save("clusters", to_onnx(clusters, x[:1], target_opset=17))
(out / "clusters.json").write_text(json.dumps({"task": "clustering"}))
expected["clusters"] = {"rows": x[::50].tolist(), "predictions": clusters.predict(x[::50]).tolist()}

# Scores only: [batch, 3] logits and no label output. Not servable as labels or values.
weights = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], np.ones(12, dtype=np.float32))
graph = helper.make_graph(
    [helper.make_node("MatMul", ["input", "w"], ["logits"])], "logits",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])],
    initializer=[weights],
)
save("logits", helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))

(out / "expected.json").write_text(json.dumps(expected))
"""
)


@dataclass
class Models:
    baked: Baked
    python: Path
    env: dict[str, str]
    folder: Path
    expected: dict[str, Any]

    def start(self, artifact: str, settings: dict[str, str] | None = None) -> Service:
        """Serve ``artifact`` from the trained models (the demo model for "")."""
        env = {**self.env, "APP_LOG_LEVEL": "info", **(settings or {})}
        if artifact:
            env["APP_MODEL_PATH"] = str(self.folder / artifact)
        what = f"[{self.baked.name}] {artifact or 'the demo model'}"
        return start_service(self.python, self.baked.path, env, what)


@pytest.fixture(scope="module", params=["sklearn", "onnx"])
def models(request: pytest.FixtureRequest, cookies_session: Any, run_dir: Path) -> Models:
    """One auth=none variant per framework, installed, with the models trained for it."""
    framework = request.param
    baked = baked_with(cookies_session, model_framework=framework, auth="none")
    python, env = install_project(run_dir / "venvs", baked, TRAINING_EXTRAS[framework])
    folder = baked.path / "trained"
    script = SKLEARN_MODELS if framework == "sklearn" else ONNX_MODELS
    run(
        [str(python), "-c", script, str(folder)],
        cwd=baked.path,
        what=f"[{framework}] train the models",
        env={**os.environ, **env},
        timeout=300,
    )
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    return Models(baked, python, env, folder, expected)


@pytest.fixture
def serve(services: list[Service]) -> Callable[[Models, str], Service]:
    def start(models: Models, artifact: str) -> Service:
        service = models.start(artifact)
        services.append(service)
        service.wait_ready()
        return service

    return start


def close(actual: list[list[float]], wanted: list[list[float]], tolerance: float = 1e-5) -> bool:
    return len(actual) == len(wanted) and all(
        len(a) == len(w) and all(abs(x - y) <= tolerance for x, y in zip(a, w, strict=True))
        for a, w in zip(actual, wanted, strict=True)
    )


def check_churn(models: Models, service: Service) -> None:
    """The DataFrame pipeline: by name and by position, probabilities, the bad-record battery."""
    want = models.expected["churn"]
    name = f"[{models.baked.name}] churn"
    records = want["records"]
    with service.client() as client:
        info = client.get("/model").json()
        assert info["features"] == ["age", "income", "plan", "region"], f"{name} {info}"
        assert info["task"] == "classification" and info["classes"] == ["churn", "stay"], info
        inputs = {i["name"]: i for i in info["inputs"]}
        assert inputs["plan"]["type"] == "string", f"{name} {inputs}"
        assert sorted(inputs["plan"]["categories"]) == ["free", "pro", "team"], f"{name} {inputs}"
        assert inputs["age"]["type"] == "number", f"{name} {inputs}"

        by_name = client.post("/predict", json={"instances": records, "probabilities": True})
        assert by_name.status_code == 200, f"{name} {by_name.text}"
        body = by_name.json()
        assert body["predictions"] == want["predictions"], f"{name} {body} != {want}"
        assert close(body["probabilities"], want["probabilities"], 1e-4), f"{name} {body}"
        rows = [[r["age"], r["income"], r["plan"], r["region"]] for r in records]
        by_position = client.post("/predict", json={"instances": rows})
        assert by_position.json()["predictions"] == want["predictions"], by_position.text
        assert "probabilities" not in by_position.json(), by_position.text

        good = records[0]
        battery = {
            "unknown category": ({**good, "plan": "enterprise"}, "plan"),
            "missing feature": ({k: v for k, v in good.items() if k != "region"}, "region"),
            "extra feature": ({**good, "debug": 1}, "debug"),
            "wrong type": ({**good, "age": "forty"}, "age"),
            "null": ({**good, "income": None}, "income"),
            "number as category": ({**good, "plan": 3}, "plan"),
        }
        for case, (record, feature) in battery.items():
            response = client.post("/predict", json={"instances": [good, record]})
            assert response.status_code == 422, f"{name} {case}: {response.text}"
            issues = response.json()["detail"]
            assert any(
                i["loc"][:3] == ["body", "instances", 1] and feature in json.dumps(i)
                for i in issues
            ), f"{name} {case}: the error does not name instance 1 and {feature}: {issues}"
        positional = client.post("/predict", json={"instances": [[40.0, 50.0, "gold", "eu"]]})
        assert positional.status_code == 422 and "plan" in positional.text, positional.text

        schema = client.get("/openapi.json").json()
        body_schema = json.dumps(
            schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        )
        for word in ('"age"', '"region"', '"apac"', '"minItems": 4', '"maxItems": 4'):
            assert word in body_schema, f"{name} the /predict schema lacks {word}: {body_schema}"
        assert "$ref" not in body_schema, f"{name} {body_schema}"


def test_models_serve_as_in_process(
    models: Models, serve: Callable[[Models, str], Service]
) -> None:
    ext = ".skops" if models.baked.context["model_framework"] == "sklearn" else ".onnx"
    check_churn(models, serve(models, f"churn{ext}"))
    if ext == ".skops":
        check_sklearn_models(models, serve)
    else:
        check_onnx_models(models, serve)


def check_sklearn_models(models: Models, serve: Callable[[Models, str], Service]) -> None:
    want = models.expected["diabetes"]
    with serve(models, "diabetes.skops").client() as client:
        info = client.get("/model").json()
        assert info["task"] == "regression" and info["classes"] == [], info
        assert info["probabilities"] is False, info
        response = client.post("/predict", json={"instances": want["rows"]})
        assert close([response.json()["predictions"]], [want["predictions"]], 1e-9), response.text
        asked = client.post("/predict", json={"instances": want["rows"], "probabilities": True})
        assert asked.status_code == 422, f"probabilities of a regressor: {asked.text}"
        oip = client.get(f"/v2/models/{info['name']}").json()
        assert oip["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}], oip

    rejecting = serve(models, "positive.skops")
    want = models.expected["positive"]
    with rejecting.client() as client:
        assert client.post("/predict", json={"instances": want["good"]}).status_code == 200
        refused = client.post("/predict", json={"instances": want["bad"]})
        assert refused.status_code == 422, refused.text
        assert refused.json()["detail"][0]["type"] == "model_rejected", refused.text
        assert "positive" in refused.text, refused.text
        assert client.get("/health/ready").status_code == 200
    assert_logged(rejecting, "the model rejected the input", "Box-Cox")

    failing = serve(models, "logs.skops")
    want = models.expected["logs"]
    with failing.client() as client:
        info = client.get("/model").json()
        assert info["version"] == "logs-1" and info["features"][0] == "age", info
        assert client.post("/predict", json={"instances": want["good"]}).status_code == 200
        # log(0) is -inf: a schema-valid row the model cannot answer is the row's fault.
        broken = client.post("/predict", json={"instances": [*want["good"], *want["bad"]]})
        assert broken.status_code == 422, broken.text
        assert broken.headers["content-type"] == "application/json", broken.headers
        (issue,) = broken.json()["detail"]
        assert issue["type"] == "model_rejected", issue
        assert issue["loc"] == ["body", "instances", 1], issue
        assert client.get("/health/ready").status_code == 200
    assert_logged(failing, "the model rejected the input", "NaN or Infinity")


def assert_logged(service: Service, message: str, detail: str) -> None:
    """One JSON line for the failure, with the traceback; nothing on stderr that is not JSON."""
    lines = service.log.read_text(encoding="utf-8").splitlines()
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{service.what}: a log line that is not JSON: {line!r}")
    hits = [r for r in records if r.get("message") == message]
    assert len(hits) == 1, f"{service.what}: {len(hits)} lines say {message!r}: {lines[-10:]}"
    assert detail in hits[0].get("exception", ""), f"{service.what}: {hits[0]}"
    assert hits[0].get("request_id"), f"{service.what}: no request id in {hits[0]}"


def assert_json_log(service: Service) -> None:
    """Every line the service wrote is JSON: no library's own plain-text logging."""
    for line in service.log.read_text(encoding="utf-8").splitlines():
        try:
            json.loads(line)
        except ValueError:
            pytest.fail(f"{service.what}: a log line that is not JSON: {line!r}")


def check_onnx_models(models: Models, serve: Callable[[Models, str], Service]) -> None:
    for artifact in ("flowers", "lightgbm"):
        want = models.expected[artifact]
        with serve(models, f"{artifact}.onnx").client() as client:
            info = client.get("/model").json()
            assert info["probabilities"] is True, f"{artifact}: {info}"
            response = client.post(
                "/predict", json={"instances": want["rows"], "probabilities": True}
            )
            assert response.status_code == 200, f"{artifact}: {response.text}"
            body = response.json()
            assert body["predictions"] == want["predictions"], f"{artifact}: {body}"
            assert close(body["probabilities"], want["probabilities"]), f"{artifact}: {body}"
            if artifact == "lightgbm":  # the graph agrees with LightGBM itself
                assert body["predictions"] == want["in_process"], body
            tensor = {"name": "input-0", "shape": [3, 4], "datatype": "FP32", "data": want["rows"]}
            infer = client.post(
                f"/v2/models/{info['name']}/infer",
                json={"inputs": [tensor], "outputs": [{"name": "probabilities"}]},
            )
            assert infer.status_code == 200, f"{artifact}: {infer.text}"
            (output,) = infer.json()["outputs"]
            assert output["name"] == "probabilities" and output["shape"] == [3, 3], output
            assert close(output["data"], want["probabilities"]), output

    want = models.expected["churn"]
    with serve(models, "churn.onnx").client() as client:
        name = client.get("/model").json()["name"]
        meta = client.get(f"/v2/models/{name}").json()
        assert [i["name"] for i in meta["inputs"]] == ["age", "income", "plan", "region"], meta
        assert {i["name"]: i["datatype"] for i in meta["inputs"]}["plan"] == "BYTES", meta
        records = want["records"]
        tensors = [
            {
                "name": column,
                "shape": [len(records)],
                "datatype": "BYTES" if column in ("plan", "region") else "FP64",
                "data": [r[column] for r in records],
            }
            for column in ("age", "income", "plan", "region")
        ]
        infer = client.post(f"/v2/models/{name}/infer", json={"inputs": tensors})
        assert infer.status_code == 200, infer.text
        outputs = {o["name"]: o for o in infer.json()["outputs"]}
        assert outputs["predict"]["data"] == want["predictions"], outputs
        assert outputs["predict"]["datatype"] == "BYTES", outputs

    want = models.expected["ridge"]
    with serve(models, "ridge.onnx").client() as client:
        info = client.get("/model").json()
        assert info["task"] == "regression", info
        response = client.post("/predict", json={"instances": want["rows"]})
        assert close([response.json()["predictions"]], [want["predictions"]], 1e-3), response.text

    want = models.expected["churn"]
    opened = serve(models, "open.onnx")
    with opened.client() as client:
        inputs = {i["name"]: i for i in client.get("/model").json()["inputs"]}
        assert sorted(inputs["plan"]["categories"]) == ["free", "pro", "team"], inputs
        response = client.post("/predict", json={"instances": want["records"]})
        assert response.json()["predictions"] == want["predictions"], response.text
        # The graph's encoder would fail on a value it does not know: refused before it.
        unknown = client.post("/predict", json={"instances": [{**want["records"][0], "plan": "x"}]})
        assert unknown.status_code == 422 and "plan" in unknown.text, unknown.text
    assert_json_log(opened)

    want = models.expected["ridge2"]
    with serve(models, "ridge2.onnx").client() as client:
        info = client.get("/model").json()
        assert [o["name"] for o in info["outputs"]] == ["progression", "half"], info
        response = client.post("/predict", json={"instances": want["rows"]})
        assert close(response.json()["predictions"], want["predictions"], 1e-2), response.text
        meta = client.get(f"/v2/models/{info['name']}").json()
        assert meta["outputs"][0]["shape"] == [-1, 2], meta

    want = models.expected["clusters"]
    with serve(models, "clusters.onnx").client() as client:
        info = client.get("/model").json()
        assert info["task"] == "clustering" and info["probabilities"] is False, info
        response = client.post("/predict", json={"instances": want["rows"]})
        assert response.json()["predictions"] == want["predictions"], response.text
        meta = client.get(f"/v2/models/{info['name']}").json()
        assert meta["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}], meta
        tensor = {"name": "wrong", "shape": [1, 4], "datatype": "FP32", "data": want["rows"][0]}
        refused = client.post(f"/v2/models/{info['name']}/infer", json={"inputs": [tensor]})
        assert refused.status_code == 400 and "input-0" in refused.text, refused.text

    refused = models.start("logits.onnx")
    try:
        code = refused.process.wait(timeout=120)
    finally:
        refused.stop()
    assert code != 0, f"a scores-only graph was served: {refused.output()}"
    assert "no output with one label or value per row" in refused.output(), refused.output()


def test_schemathesis_finds_nothing(
    models: Models, serve: Callable[[Models, str], Service], tmp_path: Path
) -> None:
    """Every check schemathesis has, with no allowance, against the DataFrame pipeline's own
    schema."""
    if models.baked.context["model_framework"] != "sklearn":
        pytest.skip("run once, against the DataFrame pipeline served by scikit-learn")
    service = serve(models, "churn.skops")
    run_schemathesis(service, tmp_path, f"[{models.baked.name}] the DataFrame pipeline")
