import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from {{ cookiecutter.project_slug }}.cli import app


def test_train_demo_writes_artifact_and_metadata(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train-demo", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    artifact = Path(result.output.strip())
    assert artifact.is_file()
    assert artifact.with_suffix(".json").is_file()


def test_serve_refuses_a_missing_model_file(tmp_path: Path) -> None:
    env = {"APP_MODEL_PATH": str(tmp_path / "nope.bin"), "PATH": ""}
{%- if cookiecutter.auth == "jwt" %}
    env["APP_SECRET_KEY"] = "k" * 32
{%- elif cookiecutter.auth == "oidc" %}
    env["APP_OIDC_ISSUER"] = "https://id.example.com"
    env["APP_OIDC_AUDIENCE"] = "model"
{%- endif %}
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "APP_MODEL_PATH" in result.stderr
{%- if cookiecutter.auth == "jwt" %}


def test_serve_refuses_a_short_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "{{ cookiecutter.project_slug }}", "serve"],
        env={"APP_SECRET_KEY": "too-short", "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "APP_SECRET_KEY" in result.stderr
    assert "32 bytes" in result.stderr
{%- endif %}
