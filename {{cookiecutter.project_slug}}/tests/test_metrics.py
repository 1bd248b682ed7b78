from fastapi.testclient import TestClient

from .conftest import IRIS_ROW


def _sample(text: str, prefix: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    before = client.get("/metrics").text
    route = 'http_requests_total{method="POST",route="/predict",status="200"}'
    for _ in range(3):
        assert client.post("/predict", json={"instances": [IRIS_ROW, IRIS_ROW]}).status_code == 200
    client.get("/no/such/path/12345")
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    assert _sample(after.text, route) - _sample(before, route) == 3
    assert "/no/such/path/12345" not in after.text
    assert 'route="unmatched"' in after.text
    assert (
        _sample(after.text, "model_predictions_total") - _sample(before, "model_predictions_total")
        == 6
    )


def test_model_info_and_metric_names(client: TestClient) -> None:
    text = client.get("/metrics").text
    for name in (
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_in_progress",
        "model_inference_duration_seconds_bucket",
        "model_batch_size_bucket",
        "model_info{",
    ):
        assert name in text, name
    assert 'framework="{{ cookiecutter.model_framework }}"' in text


def test_metrics_need_no_credentials(anonymous: TestClient) -> None:
    assert anonymous.get("/metrics").status_code == 200
    assert "/metrics" not in anonymous.get("/openapi.json").json()["paths"]
