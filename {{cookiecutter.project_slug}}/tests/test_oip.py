"""Open Inference Protocol V2 routes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app

from .conftest import IRIS_ROW


def _name(client: TestClient) -> str:
    name: str = client.get("/model").json()["name"]
    return name


def test_server_routes(anonymous: TestClient) -> None:
    assert anonymous.get("/v2").json()["name"]
    assert anonymous.get("/v2/health/live").json() == {"live": True}
    assert anonymous.get("/v2/health/ready").json() == {"ready": True}


def test_infer_over_quota_is_429_in_the_protocol_shape(
    make_settings: Any, auth_headers: dict[str, str]
) -> None:
    app = create_app(make_settings(rate_limit="1/hour"))
    with TestClient(app, headers=auth_headers) as client:
        url = f"/v2/models/{_name(client)}/infer"
        body = {
            "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]
        }
        assert client.post(url, json=body).status_code == 200
        refused = client.post(url, json=body)
        assert refused.status_code == 429, refused.text
        assert list(refused.json()) == ["error"]
        assert refused.headers["ratelimit-limit"] == "1"
        assert 1 <= int(refused.headers["retry-after"]) <= 3600


def test_model_metadata_and_ready(client: TestClient) -> None:
    name = _name(client)
    meta = client.get(f"/v2/models/{name}").json()
    assert meta["name"] == name
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert client.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}


@pytest.mark.parametrize("data", [IRIS_ROW * 2, [IRIS_ROW, IRIS_ROW]], ids=["flat", "nested"])
def test_infer(client: TestClient, data: list[Any]) -> None:
    name = _name(client)
    body = {
        "id": "r1",
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": data}],
    }
    response = client.post(f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["id"] == "r1"
    assert out["outputs"][0]["data"] == ["setosa", "setosa"]
    assert out["outputs"][0]["shape"] == [2]


@pytest.mark.parametrize(
    ("datatype", "row"),
    [
        ("FP32", IRIS_ROW),
        ("FP64", IRIS_ROW),
        ("INT64", [5, 3, 1, 0]),
        ("INT32", [5, 3, 1, 0]),
        ("INT64", [5.0, 3.0, 1.0, 0.0]),  # integers to JSON Schema as well
    ],
)
def test_numeric_datatypes(client: TestClient, datatype: str, row: list[float]) -> None:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": datatype, "data": row}
    response = client.post(f"/v2/models/{_name(client)}/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["setosa"]


BAD = {
    "shape mismatch": {"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]},
    "data count": {"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROW},
    "string data": {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ["a", 1, 2, 3]},
    "bytes type": {
        "name": "input-0",
        "shape": [1, 4],
        "datatype": "BYTES",
        "data": ["a", "b", "c", "d"],
    },
    "unknown type": {"name": "input-0", "shape": [1, 4], "datatype": "FP8", "data": IRIS_ROW},
    "floats as INT64": {"name": "input-0", "shape": [1, 4], "datatype": "INT64", "data": IRIS_ROW},
    "booleans": {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [True, 1, 2, 3]},
    "rank 3": {"name": "input-0", "shape": [1, 1, 4], "datatype": "FP64", "data": IRIS_ROW},
    "no rows": {"name": "input-0", "shape": [0, 4], "datatype": "FP64", "data": []},
    "too many rows": {"name": "input-0", "shape": [1001, 4], "datatype": "FP64", "data": IRIS_ROW},
    "negative dim": {"name": "input-0", "shape": [-1, 4], "datatype": "FP64", "data": IRIS_ROW},
    "null data": {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [None, 1, 2, 3]},
    "unknown name": {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW},
    "empty shape": {"name": "input-0", "shape": [], "datatype": "FP64", "data": IRIS_ROW},
}


@pytest.mark.parametrize("tensor", BAD.values(), ids=BAD.keys())
def test_bad_input_is_400_with_error(client: TestClient, tensor: dict[str, Any]) -> None:
    response = client.post(f"/v2/models/{_name(client)}/infer", json={"inputs": [tensor]})
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "body",
    [{}, {"inputs": []}, {"inputs": "x"}, [1, 2], {"inputs": [{"name": "x"}]}],
    ids=["empty", "no inputs", "inputs not a list", "not an object", "tensor fields missing"],
)
def test_malformed_request_is_400_with_error(client: TestClient, body: Any) -> None:
    response = client.post(f"/v2/models/{_name(client)}/infer", json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"error"}


def test_two_input_tensors_are_400(client: TestClient) -> None:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    response = client.post(f"/v2/models/{_name(client)}/infer", json={"inputs": [tensor, tensor]})
    assert response.status_code == 400
    assert set(response.json()) == {"error"}


def test_json_body_without_json_content_type(client: TestClient) -> None:
    """Triton's client sends JSON tensors without saying so."""
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    response = client.post(
        f"/v2/models/{_name(client)}/infer",
        content=json.dumps({"inputs": [tensor]}),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == ["setosa"]


@pytest.mark.parametrize("content_type", [None, "application/json; charset=utf-8"])
def test_json_body_as_oip_clients_declare_it(client: TestClient, content_type: str | None) -> None:
    """Triton's HTTP client declares no Content-Type; others declare JSON."""
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(
        f"/v2/models/{_name(client)}/infer",
        content=json.dumps({"inputs": [tensor]}),
        headers=headers,
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_a_browser_form_could_send_is_415(client: TestClient, content_type: str) -> None:
    """The content types a page on any site may post without a preflight are refused."""
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    response = client.post(
        f"/v2/models/{_name(client)}/infer",
        content=json.dumps({"inputs": [tensor]}),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["error"]


def test_unknown_model_is_404(client: TestClient) -> None:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    response = client.post("/v2/models/nope/infer", json={"inputs": [tensor]})
    assert response.status_code == 404
    assert "error" in response.json()
    assert client.get("/v2/models/nope").status_code == 404


def test_versioned_routes_serve_a_kept_version_and_404_another(client: TestClient) -> None:
    name = _name(client)
    version = client.get("/model").json()["version"]
    assert client.get(f"/v2/models/{name}").json()["versions"] == [version]
    base = f"/v2/models/{name}/versions/{version}"
    assert client.get(base).json()["versions"] == [version]
    assert client.get(f"{base}/ready").json() == {"name": name, "ready": True}
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    response = client.post(f"{base}/infer", json={"inputs": [tensor]})
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == version
    unknown = f"/v2/models/{name}/versions/nope"
    for response in (
        client.get(unknown),
        client.get(f"{unknown}/ready"),
        client.post(f"{unknown}/infer", json={"inputs": [tensor]}),
    ):
        assert response.status_code == 404
        assert list(response.json()) == ["error"]


def test_openapi_documents_infer_like_the_other_model_routes(client: TestClient) -> None:
    """infer reads its body and credentials itself; its documentation must not suffer."""
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/v2/models/{name}/infer"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["inputs"]
    # Nested models inlined: a "#/$defs/..." reference would point nowhere in the document.
    assert "$ref" not in json.dumps(schema)
    # One tensor schema per kind of datatype, its values typed: numbers, or integers.
    tensors = schema["properties"]["inputs"]["items"]["oneOf"]
    assert [t["properties"]["datatype"]["enum"] for t in tensors] == [
        ["FP32", "FP64"],
        ["INT64", "INT32"],
    ]
    for tensor in tensors:
        assert tensor["required"] == ["name", "shape", "datatype", "data"]
        assert tensor["properties"]["data"]["minItems"] == 1
    # What JSON Schema cannot say is said in words.
    assert "as many values as its `shape`" in schema["description"]
    assert [p["name"] for p in operation["parameters"]] == ["name"]
    assert {"200", "400", "404", "503", "504"} <= set(operation["responses"])
{%- if cookiecutter.auth != "none" %}
    assert {"401", "403"} <= set(operation["responses"])
    assert operation["security"] == paths["/v2/models/{name}"]["get"]["security"]


def test_infer_needs_credentials(anonymous: TestClient) -> None:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
    name = anonymous.get("/v2").json()["name"]
    response = anonymous.post(f"/v2/models/{name}/infer", json={"inputs": [tensor]})
    assert response.status_code == 401
    assert list(response.json()) == ["error"]  # the protocol's error shape
    assert response.headers["www-authenticate"]
    assert list(anonymous.get(f"/v2/models/{name}").json()) == ["error"]
    # Elsewhere, FastAPI's shape.
    assert list(anonymous.post("/predict", json={"instances": [IRIS_ROW]}).json()) == ["detail"]
{%- else %}
    assert "security" not in operation
{%- endif %}
