"""Install every supported variant, run its own tests, serve it and probe it over loopback.

Variants that declare the same dependencies share one virtual environment (see
``install_project``), so the sixteen variants cost a handful of installs. Every failure message
starts with the variant's name.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Baked,
    Service,
    add_user,
    install_project,
    phase,
    run,
    start_service,
)
from tests.identity import AUDIENCE, start_provider
from tests.variants import DEFAULTS, SUPPORTED, variant_id

pytestmark = pytest.mark.slow

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA_ROW = [6.7, 3.0, 5.2, 2.3]
SECRET = "boot-test-secret-key-0123456789abcdef"
PASSWORD = "boot test password"


def credentials(baked: Baked, python: Path, env: dict[str, str]) -> dict[str, str]:
    """Create a user or a key with the baked CLI, as its README says; return API-key headers.

    For ``jwt`` the user is created here and the token is fetched from ``/token`` once the
    service runs, so this returns no headers.
    """
    cli = [str(python), "-m", baked.slug]
    auth = baked.context["auth"]
    if auth == "api_key":
        key = run(
            [*cli, "keys", "add", "prober", "--scope", "predict"],
            cwd=baked.path,
            what=f"[{baked.name}] keys add",
            env=env,
        ).strip()
        assert key and "\n" not in key, f"[{baked.name}] keys add printed {key!r}"
        return {"X-API-Key": key}
    if auth == "jwt":
        add_user(python, baked.path, env, "prober", PASSWORD, f"[{baked.name}]")
    return {}


@pytest.fixture(params=SUPPORTED, ids=[variant_id(v) for v in SUPPORTED])
def installed(
    request: pytest.FixtureRequest, bake: Callable[..., Baked], run_dir: Path
) -> tuple[Baked, Path, dict[str, str]]:
    """A baked variant installed in the shared environment for its dependency set."""
    baked = bake(**request.param)
    baked.context = {**DEFAULTS, **baked.context}
    python, env = install_project(run_dir / "venvs", baked)
    return baked, python, env


def test_install_test_boot_and_probe(
    installed: tuple[Baked, Path, dict[str, str]], services: list[Service]
) -> None:
    baked, python, path_env = installed
    ctx = baked.context
    name = f"[{baked.name}]"
    with phase("tests"):  # a column of its own in the per-variant summary
        run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"],
            cwd=baked.path,
            what=f"{name} the baked project's own tests",
            env={**os.environ, **path_env},
        )

    env = {
        **path_env,
        "APP_LOG_LEVEL": "warning",
        "APP_DATABASE_URL": f"sqlite:///{baked.path / 'data' / 'boot.db'}",
    }
    if ctx["auth"] == "jwt":
        env["APP_SECRET_KEY"] = SECRET
    if ctx["auth"] == "oidc":
        provider = start_provider(baked.path, services)
        env["APP_OIDC_ISSUER"] = provider.issuer
        env["APP_OIDC_AUDIENCE"] = AUDIENCE
    headers = credentials(baked, python, {**os.environ, **env})
    service = start_service(python, baked.path, env, f"{name} serve")
    services.append(service)
    service.wait_ready()

    with service.client() as client:
        live = client.get("/health/live")
        assert live.json() == {"status": "ok"}, f"{name} /health/live: {live.text}"
        ready = client.get("/health/ready")
        assert ready.status_code == 200, f"{name} /health/ready: {ready.text}"

        if ctx["auth"] == "jwt":
            wrong = client.post("/token", data={"username": "prober", "password": "nope"})
            assert wrong.status_code == 401, f"{name} /token with a wrong password: {wrong.text}"
            token = client.post("/token", data={"username": "prober", "password": PASSWORD})
            assert token.status_code == 200, f"{name} /token: {token.text}"
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            me = client.get("/users/me", headers=headers)
            assert me.status_code == 200 and me.json()["name"] == "prober", f"{name} {me.text}"
        if ctx["auth"] == "oidc":
            headers = {"Authorization": f"Bearer {provider.token()}"}
        if ctx["auth"] != "none":
            anonymous = client.post("/predict", json={"instances": [IRIS_ROW]})
            assert anonymous.status_code == 401, f"{name} /predict without credentials"
            assert "www-authenticate" in anonymous.headers, f"{name} 401 without WWW-Authenticate"
        client.headers.update(headers)

        model_response = client.get("/model")
        assert model_response.status_code == 200, f"{name} /model: {model_response.text}"
        model = model_response.json()
        assert model["n_features"] == 4, f"{name} /model: {model}"
        assert model["framework"] == ctx["model_framework"], f"{name} /model: {model}"
        good = client.post("/predict", json={"instances": [IRIS_ROW, VIRGINICA_ROW]})
        assert good.status_code == 200, f"{name} /predict: {good.text}"
        assert good.json()["predictions"] == ["setosa", "virginica"], f"{name} {good.text}"

        check_bad_input(client, name)

        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text, f"{name} /docs"
        assert client.get("/openapi.json").status_code == 200, f"{name} /openapi.json"

        with service.client() as anonymous_client:  # /metrics needs no credentials
            metrics = anonymous_client.get("/metrics")
        if ctx["use_prometheus"]:
            assert metrics.status_code == 200, f"{name} /metrics: {metrics.text[:300]}"
            line = 'http_requests_total{method="POST",route="/predict",status="200"} 1.0'
            assert line in metrics.text, f"{name} /metrics lacks {line!r}"
        else:
            assert metrics.status_code == 404, f"{name} /metrics without prometheus"

        v2 = client.get("/v2/health/ready")
        if ctx["use_open_inference_protocol"]:
            assert v2.json() == {"ready": True}, f"{name} /v2/health/ready: {v2.text}"
            tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}
            infer = client.post(f"/v2/models/{model['name']}/infer", json={"inputs": [tensor]})
            assert infer.status_code == 200, f"{name} /v2 infer: {infer.text}"
            assert infer.json()["outputs"][0]["data"] == ["setosa"], f"{name} {infer.text}"
        else:
            assert v2.status_code == 404, f"{name} /v2 without the open inference protocol"

    started = time.monotonic()
    code = service.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM, 128 + signal.SIGTERM), (
        f"{name} exit code {code} on SIGTERM\n{service.output()}"
    )
    assert time.monotonic() - started < 30, f"{name} took too long to stop"


def check_bad_input(client: Any, name: str) -> None:
    """Bad bodies get a 4xx with a JSON body, never a 500."""
    bad_bodies: list[Any] = [
        {"instances": [[1.0, 2.0]]},
        {"instances": [[5.1, "x", 1.4, 0.2]]},
        {"instances": []},
        {"instances": [IRIS_ROW] * 1001},
        {"rows": [IRIS_ROW]},
    ]
    for body in bad_bodies:
        response = client.post("/predict", json=body)
        assert response.status_code == 422, f"{name} {body!r:.60}: {response.text}"
    for raw in (b'{"instances": [[NaN, 1, 2, 3]]}', b'{"instances": [[1, 2', b"\xff\xfe"):
        response = client.post(
            "/predict", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422), f"{name} {raw!r}: {response.text}"
        assert response.headers["content-type"].startswith("application/json"), name
