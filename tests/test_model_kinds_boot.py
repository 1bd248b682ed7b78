"""The kinds of model a data scientist trains every day beyond one table and one answer, served.

Each is trained in the test from data scikit-learn ships or makes, saved with skops and served
by a real process with ``APP_MODEL_PATH``; its answers are compared with the model's own
``predict``/``predict_proba`` on the same rows, computed in the same run:

- text: a pipeline whose first step is a vectorizer (documents as strings), and a DataFrame
  pipeline with a text column beside a number;
- several outputs: a two-target ``Ridge`` (named in the metadata file), a random forest on two
  targets, a ``MultiOutputClassifier`` with probabilities per target;
- booleans (from an encoder's categories, and declared in the metadata file), pandas
  ``category`` columns (``HistGradientBoostingClassifier(categorical_features="from_dtype")``);
- clusters (``KMeans``) and outlier flags (``IsolationForest``), integers in JSON and in OIP;
- a pipeline with a function and a transformer class of the user's own, in the baked package,
  over a datetime column: refused until its module is trusted, then served;
- the demo model with extreme but finite input: a 422 naming the instance, not a 500.

Schemathesis with every check and no allowance runs against the demo (with probabilities) and
one model of each new kind.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Service, baked_with, install_project, run, run_schemathesis
from tests.test_models_boot import Models, close

pytestmark = pytest.mark.slow

TRAIN = r"""
import importlib, json, sys
from pathlib import Path
import numpy as np
import pandas as pd
import skops.io
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

out, slug = Path(sys.argv[1]), sys.argv[2]
out.mkdir(parents=True, exist_ok=True)
own = importlib.import_module(f"{slug}.preprocessing")
rng = np.random.default_rng(0)
expected = {}


def save(name, model, instances, probe, sidecar=None, proba=False):
    skops.io.dump(model, out / f"{name}.skops")
    if sidecar is not None:
        (out / f"{name}.json").write_text(json.dumps(sidecar))
    answer = {"instances": instances, "predictions": np.asarray(model.predict(probe)).tolist()}
    if proba:
        found = model.predict_proba(probe)
        if isinstance(found, list):  # one table per output: per row, one list per output
            answer["probabilities"] = [list(r) for r in zip(*(t.tolist() for t in found))]
        else:
            answer["probabilities"] = found.tolist()
    expected[name] = answer


good = ["wonderful", "moving", "funny", "brilliant", "warm"]
bad = ["dull", "slow", "awful", "boring", "long"]
filler = ["film", "plot", "actors", "story", "the", "and", "a"]
def review(positive):
    words = list(rng.choice(good if positive else bad, 3)) + list(rng.choice(filler, 4))
    rng.shuffle(words)
    return " ".join(words)
moods = rng.integers(0, 2, 200)
documents = [review(m) for m in moods]
labels = np.where(moods == 1, "liked", "disliked")
text = make_pipeline(TfidfVectorizer(), LogisticRegression(max_iter=1000)).fit(documents, labels)
probe = ["a warm and funny story", "slow boring plot", "the actors"]
save("text", text, probe, probe, proba=True)

tickets = pd.DataFrame({"text": documents, "length": [float(len(d)) for d in documents]})
ticket_model = make_pipeline(
    ColumnTransformer([("words", TfidfVectorizer(), "text"), ("size", "passthrough", ["length"])]),
    LogisticRegression(max_iter=1000),
).fit(tickets, labels)
records = tickets.head(4).to_dict(orient="records")
save("tickets", ticket_model, records, pd.DataFrame(records), proba=True)

x, y = load_diabetes(return_X_y=True)
two = np.column_stack([y, 0.5 * y + 10 * x[:, 0]])
ridge = Ridge(alpha=0.5).fit(x, two)
save("ridge2", ridge, x[:4].tolist(), x[:4], {"outputs": ["progression", "risk"]})
forest = RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0).fit(x, two)
save("forest2", forest, x[:4].tolist(), x[:4])

iris = load_iris()
species = iris.target_names[iris.target]
size = np.where(iris.data[:, 2] > 4.0, "large", "small")
multi = MultiOutputClassifier(LogisticRegression(max_iter=1000)).fit(
    iris.data, np.column_stack([species, size])
)
rows = iris.data[::37].tolist()
save("multi", multi, rows, np.asarray(rows), proba=True)

n = 300
flags = pd.DataFrame({
    "flag": rng.integers(0, 2, n).astype(bool),
    "member": rng.integers(0, 2, n).astype(bool),
    "amount": rng.normal(50, 10, n).round(2),
})
flag_labels = np.where(flags["flag"] ^ (flags["amount"] > 50), "yes", "no")
flag_model = make_pipeline(
    ColumnTransformer([
        ("flag", OneHotEncoder(), ["flag"]),
        ("rest", "passthrough", ["member", "amount"]),
    ]),
    LogisticRegression(max_iter=1000),
).fit(flags, flag_labels)
records = flags.head(4).to_dict(orient="records")
sidecar = {"features": ["flag", {"name": "member", "type": "boolean", "example": True}, "amount"]}
save("flags", flag_model, records, pd.DataFrame(records), sidecar, proba=True)

shop = pd.DataFrame({
    "colour": pd.Categorical(rng.choice(["red", "green", "blue"], n)),
    "size": pd.Categorical(rng.choice(["S", "M", "L", "XL"], n)),
    "weight": rng.normal(1.0, 0.2, n).round(3),
})
bought = np.where((shop["colour"] == "red") | (shop["weight"] > 1.1), "bought", "left")
boosted = HistGradientBoostingClassifier(
    categorical_features="from_dtype", max_iter=20, random_state=0
).fit(shop, bought)
records = shop.head(4).astype({"colour": str, "size": str}).to_dict(orient="records")
probe = pd.DataFrame(records).astype({"colour": shop["colour"].dtype, "size": shop["size"].dtype})
save("boosted", boosted, records, probe, proba=True)

clusters = KMeans(n_clusters=3, n_init=3, random_state=0).fit(iris.data)
save("clusters", clusters, iris.data[::50].tolist(), iris.data[::50])
outliers = IsolationForest(n_estimators=50, random_state=0).fit(iris.data)
rows = [*iris.data[:2].tolist(), [30.0, 0.1, 20.0, 9.0]]
save("outliers", outliers, rows, np.asarray(rows))

when = pd.Timestamp("2024-03-04") + pd.to_timedelta(rng.integers(0, 14 * 24, n), unit="h")
visits = pd.DataFrame({"when": when, "amount": rng.exponential(40, n).round(2)})
busy = np.where((visits["when"].dt.hour >= 12) & (visits["amount"] > 20), "busy", "quiet")
custom = make_pipeline(
    ColumnTransformer([
        ("time", own.TimeOfWeek(), ["when"]),
        ("amount", FunctionTransformer(own.log1p_positive), ["amount"]),
    ]),
    LogisticRegression(max_iter=1000),
).fit(visits, busy)
records = [
    {"when": stamp.isoformat(), "amount": amount}
    for stamp, amount in zip(visits["when"].head(4), visits["amount"].head(4))
]
sidecar = {"features": [{"name": "when", "type": "datetime"}, "amount"]}
save("custom", custom, records, visits.head(4), sidecar, proba=True)

(out / "expected.json").write_text(json.dumps(expected))
"""


@pytest.fixture(scope="module")
def models(cookies_session: Any, run_dir: Path) -> Models:
    """The default variant with auth none, installed, with the models trained for it."""
    baked = baked_with(cookies_session, auth="none")
    python, env = install_project(run_dir / "venvs", baked)
    folder = baked.path / "kinds"
    run(
        [str(python), "-c", TRAIN, str(folder), baked.path.name],
        cwd=baked.path,
        what=f"[{baked.name}] train the model kinds",
        env={**os.environ, **env},
        timeout=300,
    )
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    return Models(baked, python, env, folder, expected)


@pytest.fixture
def serve(services: list[Service]) -> Callable[..., Service]:
    def start(models: Models, artifact: str, **settings: str) -> Service:
        service = models.start(artifact, settings)
        services.append(service)
        service.wait_ready()
        return service

    return start


def predicted(client: Any, want: dict[str, Any], *, probabilities: bool = False) -> Any:
    body = {"instances": want["instances"], "probabilities": probabilities}
    response = client.post("/predict", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert response.headers["x-model-version"] == answer["model_version"], response.headers
    return answer


def same_table(actual: list[Any], wanted: list[Any], tolerance: float = 1e-6) -> bool:
    """Nested lists of numbers equal within ``tolerance``."""
    if isinstance(actual, list) and isinstance(wanted, list):
        return len(actual) == len(wanted) and all(
            same_table(a, w, tolerance) for a, w in zip(actual, wanted, strict=True)
        )
    return bool(abs(actual - wanted) <= tolerance)


def response_schema(client: Any) -> str:
    operation = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    return json.dumps(operation["responses"]["200"]["content"]["application/json"]["schema"])


def oip_outputs(client: Any, name: str) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = client.get(f"/v2/models/{name}").json()["outputs"]
    return outputs


def test_text_models(models: Models, serve: Callable[..., Service]) -> None:
    want = models.expected["text"]
    with serve(models, "text.skops").client() as client:
        info = client.get("/model").json()
        assert info["features"] == ["text"], info
        assert info["inputs"][0]["type"] == "string", info
        assert "categories" not in info["inputs"][0] or info["inputs"][0]["categories"] is None
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert close(answer["probabilities"], want["probabilities"]), answer
        # The same documents as rows and as records.
        documents = want["instances"]
        for instances in ([[d] for d in documents], [{"text": d} for d in documents]):
            again = client.post("/predict", json={"instances": instances}).json()
            assert again["predictions"] == want["predictions"], again
        for bad in (3, None, ["two", "documents"], {"body": "x"}):
            refused = client.post("/predict", json={"instances": ["fine", bad]})
            assert refused.status_code == 422, f"{bad!r}: {refused.text}"
            assert refused.json()["detail"][0]["loc"][:3] == ["body", "instances", 1], refused.text

    want = models.expected["tickets"]
    with serve(models, "tickets.skops").client() as client:
        info = client.get("/model").json()
        inputs = {i["name"]: i for i in info["inputs"]}
        assert inputs["text"]["type"] == "string" and inputs["length"]["type"] == "number", info
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert close(answer["probabilities"], want["probabilities"]), answer
        refused = client.post("/predict", json={"instances": [{"text": 5, "length": 3.0}]})
        assert refused.status_code == 422 and "text" in refused.text, refused.text


def test_models_with_several_outputs(models: Models, serve: Callable[..., Service]) -> None:
    for artifact, names in (("ridge2", ["progression", "risk"]), ("forest2", ["y0", "y1"])):
        want = models.expected[artifact]
        with serve(models, f"{artifact}.skops").client() as client:
            info = client.get("/model").json()
            assert info["task"] == "regression", info
            assert [o["name"] for o in info["outputs"]] == names, info
            assert {o["type"] for o in info["outputs"]} == {"number"}, info
            answer = predicted(client, want)
            assert same_table(answer["predictions"], want["predictions"], 1e-9), answer
            assert '"minItems": 2' in response_schema(client), response_schema(client)
            outputs = oip_outputs(client, info["name"])
            assert outputs == [{"name": "predict", "datatype": "FP64", "shape": [-1, 2]}], outputs
            tensor = {"name": "input-0", "shape": [4, 10], "datatype": "FP64"}
            infer = client.post(
                f"/v2/models/{info['name']}/infer",
                json={"inputs": [{**tensor, "data": want["instances"]}]},
            )
            assert infer.status_code == 200, infer.text
            (output,) = infer.json()["outputs"]
            assert output["shape"] == [4, 2], output
            assert same_table(output["data"], want["predictions"], 1e-9), output

    want = models.expected["multi"]
    with serve(models, "multi.skops").client() as client:
        info = client.get("/model").json()
        assert info["task"] == "classification" and info["probabilities"] is True, info
        assert info["outputs"] == [
            {"name": "y0", "type": "string", "classes": ["setosa", "versicolor", "virginica"]},
            {"name": "y1", "type": "string", "classes": ["large", "small"]},
        ], info
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert same_table(answer["probabilities"], want["probabilities"]), answer


def test_booleans_and_category_columns(models: Models, serve: Callable[..., Service]) -> None:
    want = models.expected["flags"]
    with serve(models, "flags.skops").client() as client:
        inputs = {i["name"]: i for i in client.get("/model").json()["inputs"]}
        assert inputs["flag"]["type"] == "boolean", inputs
        assert inputs["member"]["type"] == "boolean", inputs
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert close(answer["probabilities"], want["probabilities"]), answer
        good = want["instances"][0]
        for feature, bad in (("flag", 1), ("member", "true"), ("member", None)):
            refused = client.post("/predict", json={"instances": [good, {**good, feature: bad}]})
            assert refused.status_code == 422 and feature in refused.text, refused.text

    want = models.expected["boosted"]
    with serve(models, "boosted.skops").client() as client:
        inputs = {i["name"]: i for i in client.get("/model").json()["inputs"]}
        assert sorted(inputs["colour"]["categories"]) == ["blue", "green", "red"], inputs
        assert sorted(inputs["size"]["categories"]) == ["L", "M", "S", "XL"], inputs
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert close(answer["probabilities"], want["probabilities"]), answer
        good = want["instances"][0]
        refused = client.post("/predict", json={"instances": [{**good, "colour": "purple"}]})
        assert refused.status_code == 422 and "colour" in refused.text, refused.text


def test_clusters_and_outliers(models: Models, serve: Callable[..., Service]) -> None:
    for artifact, task, classes in (
        ("clusters", "clustering", [0, 1, 2]),
        ("outliers", "outlier_detection", [-1, 1]),
    ):
        want = models.expected[artifact]
        with serve(models, f"{artifact}.skops").client() as client:
            info = client.get("/model").json()
            assert info["task"] == task and info["classes"] == classes, info
            assert info["probabilities"] is False, info
            answer = predicted(client, want)
            assert answer["predictions"] == want["predictions"], answer
            assert all(type(p) is int for p in answer["predictions"]), answer
            outputs = oip_outputs(client, info["name"])
            assert outputs == [{"name": "predict", "datatype": "INT64", "shape": [-1]}], outputs
        if artifact == "outliers":
            assert want["predictions"][-1] == -1, want  # the far-away row is an outlier


def test_code_of_your_own_is_served_once_trusted(
    models: Models, serve: Callable[..., Service]
) -> None:
    refused = models.start("custom.skops")
    try:
        code = refused.process.wait(timeout=120)
    finally:
        refused.stop()
    slug = models.baked.path.name
    assert code != 0, f"an untrusted type was loaded: {refused.output()}"
    for words in (f"{slug}.preprocessing.TimeOfWeek", "APP_MODEL_TRUSTED_TYPES"):
        assert words in refused.output(), refused.output()

    want = models.expected["custom"]
    trusted = {"APP_MODEL_TRUSTED_TYPES": f"{slug}.preprocessing"}
    with serve(models, "custom.skops", **trusted).client() as client:
        inputs = {i["name"]: i for i in client.get("/model").json()["inputs"]}
        assert inputs["when"]["type"] == "datetime", inputs
        answer = predicted(client, want, probabilities=True)
        assert answer["predictions"] == want["predictions"], answer
        assert close(answer["probabilities"], want["probabilities"]), answer
        # The same instants with an offset mean the same times in UTC.
        shifted = [{**r, "when": r["when"] + "+00:00"} for r in want["instances"]]
        again = client.post("/predict", json={"instances": shifted}).json()
        assert again["predictions"] == want["predictions"], again
        good = want["instances"][0]
        for bad in ("next tuesday", 1714557600, None):
            refused_row = client.post("/predict", json={"instances": [{**good, "when": bad}]})
            assert refused_row.status_code == 422 and "when" in refused_row.text, refused_row.text


def test_extreme_input_is_the_callers_fault(models: Models, services: list[Service]) -> None:
    """The demo model overflows to NaN on values near the largest double: such values are out
    of the documented range (a 422 naming the instance and feature), and the largest values in
    range are answered with finite probabilities. (A NaN the model makes of a valid row is a
    422 ``model_rejected`` naming the row: ``test_models_boot``'s log model.)"""
    service = models.start("")
    services.append(service)
    service.wait_ready()
    good = [5.1, 3.5, 1.4, 0.2]
    with service.client() as client:
        extreme = [-1.79e308, 1.79e308, -1.79e308, 1.79e308]
        response = client.post(
            "/predict", json={"instances": [good, extreme], "probabilities": True}
        )
        assert response.status_code == 422, response.text
        issues = response.json()["detail"]
        assert all(i["loc"][:3] == ["body", "instances", 1] for i in issues), issues
        assert "sepal_length" in json.dumps(issues), issues
        edge = [-1e100, 1e100, -1e100, 1e100]
        response = client.post("/predict", json={"instances": [good, edge], "probabilities": True})
        assert response.status_code == 200, response.text
        assert len(response.json()["probabilities"]) == 2, response.text
        assert client.get("/health/ready").status_code == 200


@pytest.mark.parametrize(
    "artifact", ["", "text.skops", "ridge2.skops", "multi.skops", "flags.skops", "clusters.skops"]
)
def test_schemathesis_finds_nothing(
    models: Models, serve: Callable[..., Service], tmp_path: Path, artifact: str
) -> None:
    """Every check schemathesis has, with no allowance: the demo with probabilities over the
    whole API, and one model of each new kind over the routes whose schemas are the model's
    own."""
    service = serve(models, artifact)
    scope = [] if not artifact else ["--include-path-regex", "^/(predict|model|v2/models/.*)$"]
    try:
        run_schemathesis(
            service,
            tmp_path,
            f"[{models.baked.name}] {artifact or 'the demo'}",
            *scope,
            max_examples=40 if not artifact else 25,
        )
    finally:
        service.stop()
