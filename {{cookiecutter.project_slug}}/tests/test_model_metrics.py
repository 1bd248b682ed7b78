"""What the model is asked and answers, in /metrics: classes, confidence, values and input drift."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import Ridge
from typer.testing import CliRunner

from {{ cookiecutter.project_slug }}.cli import app as cli
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.base import ModelLoadError
from {{ cookiecutter.project_slug }}.model.loader import load_predictor, write_demo
{%- if cookiecutter.model_framework == "onnx" %}
from {{ cookiecutter.project_slug }}.model.onnx import export
from {{ cookiecutter.project_slug }}.model.signature import Feature, Signature
{%- else %}
from {{ cookiecutter.project_slug }}.model.signature import Feature, Signature
from {{ cookiecutter.project_slug }}.model.sklearn import export
{%- endif %}
from {{ cookiecutter.project_slug }}.observability import reference
from {{ cookiecutter.project_slug }}.observability.reference import MISSING, OTHER

IRIS_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# One row of each species, as the demo model answers them.
ROWS = {
    "setosa": [5.1, 3.5, 1.4, 0.2],
    "versicolor": [6.0, 2.7, 4.2, 1.3],
    "virginica": [6.9, 3.1, 5.7, 2.3],
}


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def series(text: str, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def write_iris_csv(path: Path) -> Path:
    """The demo's training data as a data scientist keeps it: a header row, the target too."""
    iris = load_iris()
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([*IRIS_NAMES, "species"])
        for row, target in zip(iris.data.tolist(), iris.target.tolist(), strict=True):
            writer.writerow([*row, iris.target_names[target]])
    return path


def save_regressor(path: Path) -> tuple[Path, Any]:
    """A ridge regression on scikit-learn's diabetes data, as the service loads it."""
    data = load_diabetes()
    x = data.data[:, :3]
    model = Ridge().fit(x, data.target)
{%- if cookiecutter.model_framework == "onnx" %}
    path.write_bytes(export(model, x[:1].astype(np.float32)))
{%- else %}
    path.write_bytes(export(model))
{%- endif %}
    return path, x


# --- reference statistics ---------------------------------------------------------------------


def test_train_demo_writes_the_reference_the_cli_computes_from_csv(tmp_path: Path) -> None:
    artifact = write_demo(tmp_path / "model")
    runner = CliRunner()
    trained = runner.invoke(cli, ["train-demo", str(tmp_path / "demo")])
    assert trained.exit_code == 0, trained.output
    shipped = json.loads((tmp_path / "demo" / "model.reference.json").read_text())
    assert shipped == json.loads(reference.DEMO.read_text())

    data = write_iris_csv(tmp_path / "iris.csv")
    result = runner.invoke(cli, ["reference", str(data), "--model", str(artifact)])
    assert result.exit_code == 0, result.output
    written = tmp_path / "model" / "model.reference.json"
    assert result.output.strip() == str(written)
    computed = json.loads(written.read_text())
    # The shipped file is what this code computes from the iris data (the model's answers may
    # differ by a borderline row between scikit-learn and an exported graph).
    assert computed["features"] == shipped["features"]
    for label, share in shipped["predictions"]["shares"].items():
        assert computed["predictions"]["shares"][label] == pytest.approx(share, abs=0.02)
    assert computed["rows"] == 150
    assert [f["name"] for f in computed["features"]] == IRIS_NAMES
    sepal = computed["features"][0]
    assert len(sepal["edges"]) == 9 and sepal["edges"] == sorted(sepal["edges"])
    assert sum(sepal["shares"].values()) == pytest.approx(1.0, abs=1e-5)
    assert sepal["shares"][MISSING] == 0
    classes = computed["predictions"]["shares"]
    assert set(classes) == {"setosa", "versicolor", "virginica", OTHER, MISSING}
    assert classes["setosa"] == pytest.approx(1 / 3, abs=0.02)


def test_parquet_gives_the_same_reference_as_csv(tmp_path: Path) -> None:
    artifact = write_demo(tmp_path / "model")
    iris = load_iris()
    table = pa.table({name: iris.data[:, i] for i, name in enumerate(IRIS_NAMES)})
    pq.write_table(table, tmp_path / "iris.parquet")
    runner = CliRunner()
    for data, output in (
        (tmp_path / "iris.parquet", tmp_path / "from-parquet.json"),
        (write_iris_csv(tmp_path / "iris.csv"), tmp_path / "from-csv.json"),
    ):
        args = ["reference", str(data), "--model", str(artifact), "--output", str(output)]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert (tmp_path / "from-parquet.json").read_text() == (tmp_path / "from-csv.json").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n", "no column petal_width"),
        ("sepal_length,sepal_width,petal_length,petal_width\n5.1,wide,1.4,0.2\n", "line 2"),
        ("sepal_length,sepal_width,petal_length,petal_width\n5.1,nan,1.4,0.2\n", "row 1"),
        ("sepal_length,sepal_width,petal_length,petal_width\n", "no rows"),
    ],
)
def test_bad_training_data_is_refused_with_the_reason(
    tmp_path: Path, content: str, message: str
) -> None:
    artifact = write_demo(tmp_path / "model")
    data = tmp_path / "data.csv"
    data.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(cli, ["reference", str(data), "--model", str(artifact)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "model" / "model.reference.json").exists()


def test_the_demo_without_a_file_needs_an_output(tmp_path: Path) -> None:
    data = write_iris_csv(tmp_path / "iris.csv")
    result = CliRunner().invoke(cli, ["reference", str(data)], env={"APP_MODEL_PATH": ""})
    assert result.exit_code == 2
    assert "--output" in result.output


def test_buckets_count_values_and_bound_the_labels() -> None:
    signature = Signature(
        features=(Feature("size"), Feature("plan", type="string", nullable=True)),
        task="classification",
        classes=("no", "yes"),
        probabilities=True,
        named=True,
    )
    plans = [f"plan-{i % 30}" for i in range(300)]  # 30 values: only the 20 most common kept
    rows = np.array([[float(i), plan] for i, plan in enumerate(plans)], dtype=object)
    found = reference.compute(signature, rows, ["no", "yes"] * 150)
    size, plan = found.features
    assert size.edges is not None and len(size.edges) == 9
    assert len(plan.shares) == 22  # 20 values, "other", "missing"
    assert plan.shares[OTHER] == pytest.approx(10 / 30)
    live = np.array([[-5.0, "plan-0"], [None, "never-seen"], [1e9, None]], dtype=object)
    assert size.counts(live[:, 0]) == {"0": 1, MISSING: 1, "9": 1}
    assert plan.counts(live[:, 1]) == {"plan-0": 1, OTHER: 1, MISSING: 1}


def test_a_reference_for_other_features_stops_the_start(make_settings: Any, tmp_path: Path) -> None:
    artifact = write_demo(tmp_path / "model")
    regressor, _ = save_regressor(tmp_path / "other{{ '.onnx' if cookiecutter.model_framework == 'onnx' else '.skops' }}")
    other = tmp_path / "other.reference.json"
    predictor = load_predictor(regressor, "other")
    reference.write(predictor, [{"x0": 0.1, "x1": 0.2, "x2": 0.3}], other)
    with (
        pytest.raises(ModelLoadError, match="compute it again"),
        TestClient(create_app(make_settings(model_path=artifact, reference_path=other))),
    ):
        pass


# --- served -----------------------------------------------------------------------------------


def test_classes_confidence_and_inputs_are_counted(
    make_settings: Any, tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["train-demo", str(tmp_path / "model")]).exit_code == 0
    artifact = tmp_path / "model" / "model{{ '.onnx' if cookiecutter.model_framework == 'onnx' else '.skops' }}"
    settings = make_settings(model_path=artifact)
    with TestClient(create_app(settings), headers=auth_headers) as client:
        before = client.get("/metrics").text
        for label, row in ROWS.items():
            response = client.post("/predict", json={"instances": [row, row]})
            assert response.json()["predictions"] == [label, label], response.text
        asked = client.post("/predict", json={"instances": [ROWS["setosa"]], "probabilities": True})
        assert asked.status_code == 200, asked.text
        outside = {**dict(zip(IRIS_NAMES, ROWS["setosa"], strict=True)), "sepal_length": 100.0}
        odd = client.post("/predict", json={"instances": [outside]})
        assert odd.status_code == 200, odd.text
        assert client.post("/predict", json={"instances": [[1, 2]]}).status_code == 422
        after = client.get("/metrics").text
    answered = {label: 2 for label in ROWS}
    answered["setosa"] += 1
    answered[odd.json()["predictions"][0]] += 1

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for label, count in answered.items():
        assert delta("model_predicted_class_total", **{"class": label}) == count, label
    assert delta("model_predicted_class_total", **{"class": OTHER}) == 0
    # Only the request that asked for probabilities has a confidence.
    assert delta("model_prediction_confidence_count") == 1
    confidence = max(asked.json()["probabilities"][0])
    assert delta("model_prediction_confidence_sum") == pytest.approx(confidence)
    # Eight valid rows per feature; the refused request is not counted.
    for name in IRIS_NAMES:
        assert delta("model_input_bucket_total", feature=name) == 8, name
    assert delta("model_input_bucket_total", feature="sepal_length", bucket="9") >= 1
    shares = json.loads((tmp_path / "model" / "model.reference.json").read_text())
    for bucket, share in shares["features"][0]["shares"].items():
        exported = value(
            after, "model_input_reference_share", feature="sepal_length", bucket=bucket
        )
        assert exported == pytest.approx(share), bucket


def test_without_a_reference_predictions_are_still_counted(
    make_settings: Any, tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    regressor, x = save_regressor(tmp_path / "ridge{{ '.onnx' if cookiecutter.model_framework == 'onnx' else '.skops' }}")
    settings = make_settings(model_path=regressor)
    with TestClient(create_app(settings), headers=auth_headers) as client:
        before = client.get("/metrics").text
        response = client.post("/predict", json={"instances": x[:5].tolist()})
        assert response.status_code == 200, response.text
        after = client.get("/metrics").text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("model_predicted_value_count") == 5
    # A histogram with negative buckets has no _sum (it could go down): check the buckets.
    predictions = response.json()["predictions"]
    for labels in series(after, "model_predicted_value_bucket"):
        bound = float(labels["le"])
        below = sum(1 for p in predictions if p <= bound)
        assert delta("model_predicted_value_bucket", **labels) == below, bound


def test_a_regressor_is_bucketed_on_its_reference_deciles(
    make_settings: Any, tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    regressor, x = save_regressor(tmp_path / "ridge{{ '.onnx' if cookiecutter.model_framework == 'onnx' else '.skops' }}")
    records = [dict(zip(["x0", "x1", "x2"], row, strict=True)) for row in x.tolist()]
    predictor = load_predictor(regressor, "ridge")
    reference.write(predictor, records, reference.default_path(regressor))
    edges = json.loads(reference.default_path(regressor).read_text())["predictions"]["edges"]
    settings = make_settings(model_path=regressor, monitor_max_features=2)
    with TestClient(create_app(settings), headers=auth_headers) as client:
        assert client.post("/predict", json={"instances": x[:20].tolist()}).status_code == 200
        text = client.get("/metrics").text
    bounds = sorted(
        float(labels["le"])
        for labels in series(text, "model_predicted_value_bucket")
        if labels["le"] != "+Inf"
    )
    assert bounds == pytest.approx(edges)
    # Only the first two features are watched: the third has no series at all.
    watched = {labels["feature"] for labels in series(text, "model_input_bucket_total")}
    assert {"x0", "x1"} <= watched and "x2" not in watched
