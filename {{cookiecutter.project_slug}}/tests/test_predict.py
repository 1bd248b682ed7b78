import json
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


def test_every_security_requirement_names_a_declared_scheme(client: TestClient) -> None:
    """The guarded operations' security is written by access.document_security; check it."""
    document = client.get("/openapi.json").json()
    schemes = document.get("components", {}).get("securitySchemes", {})
    used = {
        name
        for methods in document["paths"].values()
        for operation in methods.values()
        for requirement in operation.get("security", [])
        for name in requirement
    }
    assert "x-scope" not in json.dumps(document)
{%- if cookiecutter.auth != "none" %}
    assert used, "no operation is guarded"
    assert used <= set(schemes), f"undeclared schemes: {used - set(schemes)}"
{%- else %}
    assert not used
    assert not schemes
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


RECORD = dict(
    zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], IRIS_ROW, strict=True)
)


def test_model_reports_its_signature(client: TestClient) -> None:
    body = client.get("/model").json()
    assert body["task"] == "classification"
    assert body["probabilities"] is True
    assert [i["name"] for i in body["inputs"]] == body["features"] == list(RECORD)
    assert {i["type"] for i in body["inputs"]} == {"number"}


def test_records_by_name_and_rows_by_position_agree(client: TestClient) -> None:
    by_name = client.post("/predict", json={"instances": [RECORD]})
    by_position = client.post("/predict", json={"instances": [IRIS_ROW]})
    mixed = client.post("/predict", json={"instances": [RECORD, IRIS_ROW]})
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["predictions"] == by_position.json()["predictions"] == ["setosa"]
    assert mixed.json()["predictions"] == ["setosa", "setosa"]


def test_probabilities_on_request(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [IRIS_ROW], "probabilities": True})
    assert response.status_code == 200, response.text
    (row,) = response.json()["probabilities"]
    assert len(row) == 3 and abs(sum(row) - 1) < 1e-6
    assert row[0] == max(row)  # setosa, the first of /model's classes
    assert "probabilities" not in client.post("/predict", json={"instances": [IRIS_ROW]}).json()


BAD_RECORDS: dict[str, tuple[dict[str, Any], str]] = {
    "missing feature": ({k: v for k, v in RECORD.items() if k != "petal_width"}, "petal_width"),
    "extra feature": ({**RECORD, "colour": 1.0}, "colour"),
    "string value": ({**RECORD, "sepal_width": "wide"}, "sepal_width"),
    "null value": ({**RECORD, "sepal_width": None}, "sepal_width"),
}


@pytest.mark.parametrize(("record", "feature"), BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_bad_records_name_the_instance_and_feature(
    client: TestClient, record: dict[str, Any], feature: str
) -> None:
    response = client.post("/predict", json={"instances": [RECORD, record]})
    assert response.status_code == 422, response.text
    (issue,) = response.json()["detail"]
    assert issue["loc"] == ["body", "instances", 1, feature]


def test_a_positional_error_names_the_feature(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [[5.1, "x", 1.4, 0.2]]})
    (issue,) = response.json()["detail"]
    assert issue["msg"].startswith("sepal_width:"), issue


def test_an_instance_that_is_neither_object_nor_array_is_422(client: TestClient) -> None:
    response = client.post("/predict", json={"instances": [5.1]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "instances", 0]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_415(client: TestClient, content_type: str) -> None:
    body = json.dumps({"instances": [IRIS_ROW]})
    response = client.post("/predict", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]


def test_openapi_shows_the_model_signature(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    schema = json.dumps(operation["requestBody"]["content"]["application/json"]["schema"])
    for name in RECORD:
        assert f'"{name}"' in schema
    assert '"minItems": 4' in schema and '"maxItems": 4' in schema
    assert "$ref" not in schema
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["properties"]["predictions"]["items"]["enum"] == [
        "setosa",
        "versicolor",
        "virginica",
    ]


def _serve(make_settings: Any, artifact: Path) -> None:
    with TestClient(create_app(make_settings(model_path=artifact))):
        pass


def test_sidecar_that_disagrees_with_the_model_refuses_start_up(
    make_settings: Any, tmp_path: Path
) -> None:
    from {{ cookiecutter.project_slug }}.model.base import ModelLoadError

    artifact = write_demo(tmp_path / "model")
    sidecar = artifact.with_suffix(".json")
    for bad, words in [
        ({"classes": ["a", "b", "c"]}, "classes"),
        ({"features": "abc"}, "features"),
        ({"features": ["a", "b"]}, "2 features"),
        ({"colour": "blue"}, "colour"),
        ({"features": [{"name": "sepal_length", "type": "string"}, *list(RECORD)[1:]]}, "string"),
        ({"features": [{"name": "sepal_length", "example": "long"}, *list(RECORD)[1:]]}, "example"),
    ]:
        sidecar.write_text(json.dumps(bad), encoding="utf-8")
        with pytest.raises(ModelLoadError, match=words):
            _serve(make_settings, artifact)


def test_sidecar_found_as_metadata_json(make_settings: Any, tmp_path: Path) -> None:
    artifact = write_demo(tmp_path / "model")
    renamed = artifact.rename(artifact.with_name("churn-v3" + artifact.suffix))
    artifact.with_suffix(".json").rename(renamed.with_name("metadata.json"))
    with TestClient(create_app(make_settings(model_path=renamed))) as started:
        assert started.get("/health/ready").status_code == 200


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "is empty"), (b"\x80\x04\x95\x00", "pickle")],
    ids=["empty", "pickle"],
)
def test_unloadable_files_say_what_to_do(
    make_settings: Any, tmp_path: Path, content: bytes, words: str
) -> None:
    from {{ cookiecutter.project_slug }}.model.base import ModelLoadError

    artifact = tmp_path / "model.bin"
    artifact.write_bytes(content)
    with pytest.raises(ModelLoadError, match=words):
        _serve(make_settings, artifact)


def test_the_metadata_examples_must_be_reproduced(make_settings: Any, tmp_path: Path) -> None:
    """A model that does not give the answers its metadata file promises does not start."""
    from {{ cookiecutter.project_slug }}.model.base import ModelLoadError

    directory = tmp_path / "model"
    artifact = write_demo(directory)
    sidecar = artifact.with_suffix(".json")
    document = json.loads(sidecar.read_text(encoding="utf-8"))
    row = [5.1, 3.5, 1.4, 0.2]
    document["examples"] = [{"instance": row, "prediction": "setosa"}]
    sidecar.write_text(json.dumps(document), encoding="utf-8")
    with TestClient(create_app(make_settings(model_path=artifact))) as client:
        assert client.get("/health/ready").status_code == 200
    document["examples"] = [{"instance": row, "prediction": "virginica"}]
    sidecar.write_text(json.dumps(document), encoding="utf-8")
    with (
        pytest.raises(ModelLoadError, match="should be answered 'virginica'"),
        TestClient(create_app(make_settings(model_path=artifact))),
    ):
        pass
