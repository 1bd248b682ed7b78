"""Install baked variants for real, run their own tests, serve them and probe over loopback."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Baked, Service, make_venv, run, start_service

pytestmark = pytest.mark.slow

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
SECRET = "boot-test-secret-key-0123456789abcdef"
PASSWORD = "boot test password"

BOOTED = {
    "default": {},
    "api_key,onnx": {"auth": "api_key", "model_framework": "onnx"},
}


def credentials(baked: Baked, python: Path, env: dict[str, str]) -> dict[str, str]:
    """Create a user or key with the baked CLI, as the README says, and return headers."""
    auth = baked.context.get("auth", "jwt")
    cli = [str(python), "-m", baked.slug]
    if auth == "api_key":
        key = run(
            [*cli, "keys", "add", "prober", "--scope", "predict"],
            cwd=baked.path,
            what=f"[{baked.name}] keys add",
            env=env,
        ).strip()
        return {"X-API-Key": key}
    if auth == "jwt":
        subprocess.run(
            [*cli, "users", "add", "prober", "--scope", "predict"],
            cwd=baked.path,
            env=env,
            input=PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        return {}
    return {}


@pytest.fixture(params=list(BOOTED.values()), ids=list(BOOTED.keys()))
def installed(request: pytest.FixtureRequest, bake: Callable[..., Baked]) -> tuple[Baked, Path]:
    baked = bake(**request.param)
    return baked, make_venv(baked.path, f"[{baked.name}]")


def test_boot_and_probe(installed: tuple[Baked, Path], services: list[Service]) -> None:
    baked, python = installed
    run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=baked.path,
        what=f"[{baked.name}] the baked project's own tests",
    )
    env = {
        "APP_SECRET_KEY": SECRET,
        "APP_LOG_LEVEL": "warning",
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'boot.db'}",
    }
    headers = credentials(baked, python, env)
    service = start_service(python, baked.path, env, f"[{baked.name}] serve")
    services.append(service)
    service.wait_ready()

    with service.client() as client:
        if baked.context.get("auth", "jwt") == "jwt":
            token = client.post("/token", data={"username": "prober", "password": PASSWORD})
            assert token.status_code == 200, f"[{baked.name}] {token.text}"
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        assert client.get("/health/live").json() == {"status": "ok"}
        assert client.post("/predict", json={"instances": [IRIS_ROW]}).status_code == 401
        client.headers.update(headers)

        model = client.get("/model").json()
        assert model["n_features"] == 4, f"[{baked.name}] {model}"
        good = client.post("/predict", json={"instances": [IRIS_ROW, [6.7, 3.0, 5.2, 2.3]]})
        assert good.status_code == 200, f"[{baked.name}] {good.text}"
        assert good.json()["predictions"] == ["setosa", "virginica"]

        bad_bodies: list[Any] = [
            {"instances": [[1.0, 2.0]]},
            {"instances": [[5.1, "x", 1.4, 0.2]]},
            {"instances": []},
            {"instances": [IRIS_ROW] * 1001},
        ]
        for body in bad_bodies:
            response = client.post("/predict", json=body)
            assert response.status_code == 422, f"[{baked.name}] {body!r:.60}: {response.text}"
        nan = client.post(
            "/predict",
            content=b'{"instances": [[NaN, 1, 2, 3]]}',
            headers={"Content-Type": "application/json"},
        )
        assert nan.status_code == 422, f"[{baked.name}] NaN: {nan.text}"

        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
        if baked.context.get("use_prometheus", True):
            metrics = client.get("/metrics").text
            assert 'http_requests_total{method="POST",route="/predict",status="200"} 1.0' in metrics
        if baked.context.get("use_open_inference_protocol", True):
            assert client.get("/v2/health/ready").json() == {"ready": True}

    started = time.monotonic()
    assert service.stop(signal.SIGTERM) in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        service.output()
    )
    assert time.monotonic() - started < 30
