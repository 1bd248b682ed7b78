"""Command line: ``python -m {{ cookiecutter.project_slug }} serve``, and the admin commands."""

from __future__ import annotations

import signal
import ssl
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from .observability.logging import configure_logging
{%- if cookiecutter.use_prometheus %}
from .observability.multiprocess import prepare_multiprocess_dir
{%- endif %}
{%- if cookiecutter.auth == "jwt" %}
from .security.users_cli import users_cli
{%- elif cookiecutter.auth == "api_key" %}
from .security.keys_cli import keys_cli
{%- endif %}
from .settings import ConfigError, load_settings

# How long a worker that uvicorn (re)starts may take to load and warm up its model.
WORKER_START_TIMEOUT_S = 120

app = typer.Typer(
    help="{{ cookiecutter.project_name }}: {{ cookiecutter.description }}",
    no_args_is_help=True,
    add_completion=False,
)
{%- if cookiecutter.auth == "jwt" %}
app.add_typer(users_cli, name="users")
{%- elif cookiecutter.auth == "api_key" %}
app.add_typer(keys_cli, name="keys")
{%- endif %}


def _exit_cleanly(sig: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [APP_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind [APP_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes [APP_WORKERS].")
    ] = None,
) -> None:
    """Serve the model over HTTP until SIGTERM or Ctrl-C."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    files = {
        "APP_MODEL_PATH": settings.model_path,
        "APP_SSL_CERTFILE": settings.ssl_certfile,
        "APP_SSL_KEYFILE": settings.ssl_keyfile,
        "APP_SSL_CA_CERTS": settings.ssl_ca_certs,
    }
    for name, path in files.items():
        if path is not None and not path.is_file():
            typer.echo(f"error: {name}: no file at {path}", err=True)
            raise typer.Exit(2)
    workers = workers or settings.workers
    configure_logging(settings.log_level, settings.log_format)
{%- if cookiecutter.use_prometheus %}
    prepare_multiprocess_dir(workers)
{%- endif %}
    # After a graceful shutdown uvicorn re-raises the signal that stopped it. Having drained,
    # the service stopped as asked: exit 0 rather than be killed by SIGTERM.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    tls = settings.ssl_certfile is not None
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        # A worker counts as started once its model is loaded and warmed up. On SIGHUP uvicorn
        # restarts the workers one by one and gives up on a new one not started in time (5 s
        # by default, shorter than many models take to load).
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
        # HTTPS only when a certificate is set; with CA certificates, clients must present a
        # certificate they signed (mutual TLS).
        ssl_certfile=settings.ssl_certfile,
        ssl_keyfile=settings.ssl_keyfile,
        ssl_ca_certs=None if settings.ssl_ca_certs is None else str(settings.ssl_ca_certs),
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls and settings.ssl_ca_certs else ssl.CERT_NONE,
    )


@app.command("train-demo")
def train_demo(
    output: Annotated[Path, typer.Argument(help="Folder for model file and metadata.")] = Path(
        "model"
    ),
) -> None:
    """Train the demo model and save it, for APP_MODEL_PATH or an image build."""
{%- if cookiecutter.use_prometheus %}
    from .model.loader import write_demo
    from .observability import reference

    artifact = write_demo(output)
    reference.default_path(artifact).write_bytes(reference.DEMO.read_bytes())
    typer.echo(str(artifact))


@app.command("reference")
def reference_statistics(
    data: Annotated[
        Path, typer.Argument(help="The training data: CSV with a header row, or Parquet.")
    ],
    model: Annotated[
        Path | None,
        typer.Option(envvar="APP_MODEL_PATH", help="The model artifact [default: the demo]."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Where to write [default: beside the model].")
    ] = None,
) -> None:
    """Describe the training data beside the model, for the input drift metrics."""
    from .model.base import ModelLoadError
    from .model.loader import load_predictor
    from .observability import reference

    if output is None:
        if model is None:
            typer.echo("error: give --output (or --model, to write beside it)", err=True)
            raise typer.Exit(2)
        output = reference.default_path(model)
    try:
        predictor = load_predictor(model, "model")
        records = reference.read_records(data, predictor.metadata.signature)
        typer.echo(str(reference.write(predictor, records, output)))
    except (ModelLoadError, reference.ReferenceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
{%- else %}
    from .model.loader import write_demo

    typer.echo(str(write_demo(output)))
{%- endif %}


def main() -> None:
    app()
