from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.loader import write_demo

from .conftest import IRIS_ROW


def test_model_metadata(client: TestClient) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    body = response.json()
    assert body["framework"] == "{{ cookiecutter.model_framework }}"
    assert body["n_features"] == 4 == len(body["features"])
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert body["name"] and body["version"]


def test_predict_one_label_per_row(client: TestClient) -> None:
    rows = [IRIS_ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["predictions"] == ["setosa", "virginica", "versicolor"]
    assert body["model_version"] == client.get("/model").json()["version"]


def test_integers_are_numbers(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [[5, 3, 1, 0]]})
    assert response.status_code == 200


BAD_BODIES: dict[str, Any] = {
    "wrong feature count": {"instances": [[1.0, 2.0, 3.0]]},
    "one short row among good ones": {"instances": [IRIS_ROW, [1.0]]},
    "string feature": {"instances": [[5.1, "3.5", 1.4, 0.2]]},
    "boolean feature": {"instances": [[5.1, True, 1.4, 0.2]]},
    "null feature": {"instances": [[5.1, None, 1.4, 0.2]]},
    "empty instances": {"instances": []},
    "empty row": {"instances": [[]]},
    "flat list": {"instances": IRIS_ROW},
    "missing instances": {},
    "extra field": {"instances": [IRIS_ROW], "debug": True},
    "not an object": [IRIS_ROW],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_input_is_422(client: TestClient, body: Any) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_validation_errors_say_where_without_echoing_input(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [IRIS_ROW, [5.1, "secret", 1.4, 0.2]]})
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "instances", 1, 1]
    assert set(issue) == {"type", "loc", "msg"}
    assert "secret" not in response.text


def test_openapi_documents_predict_like_its_other_routes(client: TestClient) -> None:
    """/predict reads its body and credentials itself; its documentation must not suffer."""
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/predict"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert operation["requestBody"]["required"] is True
    assert schema["required"] == ["instances"]
    assert schema["additionalProperties"] is False
    assert {"200", "422", "503", "504"} <= set(operation["responses"])
{%- if cookiecutter.auth != "none" %}
    assert {"401", "403"} <= set(operation["responses"])
    assert operation["security"] == paths["/model"]["get"]["security"]
{%- else %}
    assert "security" not in operation
{%- endif %}


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_422(client: TestClient, literal: str) -> None:
    raw = '{"instances": [[5.1, ' + literal + ", 1.4, 0.2]]}"
    response = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("raw", ['{"instances": [[1,2', "not json", ""])
def test_malformed_json_is_422(client: TestClient, raw: str) -> None:
    response = client.post("/predict", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_too_many_rows_is_422(make_settings: Any, auth_headers: dict[str, str]) -> None:
    # Same database and secret as the other app, so the same credentials work here.
    with TestClient(create_app(make_settings(max_rows=2))) as small:
        small.headers.update(auth_headers)
        assert small.post("/predict", json={"instances": [IRIS_ROW] * 2}).status_code == 200
        response = small.post("/predict", json={"instances": [IRIS_ROW] * 3})
        assert response.status_code == 422
        assert "at most 2" in response.text


def test_body_over_limit_is_413(client: TestClient) -> None:
    rows = [IRIS_ROW] * 60_000  # about 1.3 MB of JSON, over the 1 MiB default
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_serves_a_model_file(make_settings: Any, tmp_path: Path) -> None:
    artifact = write_demo(tmp_path / "model")
    with TestClient(create_app(make_settings(model_path=artifact))) as started:
        assert started.get("/health/ready").status_code == 200


def test_corrupt_model_file_fails_start_up(make_settings: Any, tmp_path: Path) -> None:
    from {{ cookiecutter.project_slug }}.model.base import ModelLoadError

    broken = tmp_path / "broken.bin"
    broken.write_bytes(b"definitely not a model")
    with (
        pytest.raises(ModelLoadError, match="not a readable"),
        TestClient(create_app(make_settings(model_path=broken))),
    ):
        pass
