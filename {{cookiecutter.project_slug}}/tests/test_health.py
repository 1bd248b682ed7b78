from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings


def test_live(anonymous: TestClient) -> None:
    response = anonymous.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_once_model_loaded(anonymous: TestClient) -> None:
    response = anonymous.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_not_ready_before_model_loaded(settings: Settings) -> None:
    # Without the context manager the lifespan never runs, so no model is loaded.
    client = TestClient(create_app(settings))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {"status": "loading"}
    assert response.headers["retry-after"] == "1"
    assert client.get("/health/live").status_code == 200


def test_request_id_is_returned_and_honoured(anonymous: TestClient) -> None:
    generated = anonymous.get("/health/live").headers["x-request-id"]
    assert len(generated) == 32
    echoed = anonymous.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"


def test_docs_are_served_offline(anonymous: TestClient) -> None:
    page = anonymous.get("/docs")
    assert page.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    script = anonymous.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.")


def test_empty_settings_in_env_file_mean_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["APP_MODEL_PATH=", "APP_MAX_ROWS="]
{%- if cookiecutter.auth == "jwt" %}
    lines.append("APP_SECRET_KEY=" + "k" * 32)
{%- elif cookiecutter.auth == "oidc" %}
    lines += ["APP_OIDC_ISSUER=https://id.example.com", "APP_OIDC_AUDIENCE=model"]
{%- endif %}
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.model_path is None
    assert settings.max_rows == 1000
