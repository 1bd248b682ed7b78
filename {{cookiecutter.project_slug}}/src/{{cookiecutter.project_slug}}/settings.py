"""Service configuration, read once from the environment (prefix ``APP_``) and a ``.env`` file.

Every setting is listed in ``.env.example``. Invalid values stop the service at start-up with a
message that names the variable, instead of failing on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
{% if cookiecutter.auth == "jwt" %}
from pydantic import Field, SecretStr, ValidationError, field_validator
{%- else %}
from pydantic import Field, ValidationError
{%- endif %}
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(RuntimeError):
    """The environment does not describe a service that can start."""


# env_ignore_empty: an empty ``APP_X=`` line (as in .env.example) means "use the default".
ENV = SettingsConfigDict(
    env_prefix="APP_",
    env_file=".env",
    env_ignore_empty=True,
    extra="ignore",
    protected_namespaces=(),
)
{%- if cookiecutter.auth != "none" %}


class DatabaseSettings(BaseSettings):
    """The part of the settings that the user and key commands need."""

    model_config = ENV

    database_url: str = "sqlite:///./data/app.db"


class Settings(DatabaseSettings):
{%- else %}


class Settings(BaseSettings):
{%- endif %}
    model_config = ENV

    # Model
    model_path: Path | None = Field(
        default=None,
        description="Model artifact to serve; empty serves the demo model trained at start-up.",
    )
    model_name: str = Field(
        default="{{ cookiecutter.project_slug.replace('_', '-') }}",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The name reported by /model and used in model routes.",
    )

    # Server
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    drain_delay_s: float = Field(default=0.0, ge=0)

    # Request limits and inference runtime
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_rows: int = Field(default=1000, ge=1)
    max_concurrency: int = Field(default=4, ge=1)
    max_queue: int = Field(default=64, ge=0)
    inference_timeout_s: float = Field(default=10.0, gt=0)
    max_batch_size: int = Field(default=1, ge=1)
    max_batch_wait_ms: float = Field(default=2.0, ge=0)
{%- if cookiecutter.auth == "jwt" %}

    # Tokens
    secret_key: SecretStr = Field(description="HMAC key for tokens: at least 32 bytes of UTF-8.")
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "{{ cookiecutter.project_slug.replace('_', '-') }}"
    jwt_audience: str = "{{ cookiecutter.project_slug.replace('_', '-') }}"
    token_expire_minutes: int = Field(default=15, ge=1, le=24 * 60)
    jwt_leeway_s: int = Field(default=10, ge=0, le=300)
    user_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a token's user is remembered as active (0: ask the database "
        "on every request); a disabled user's tokens keep working for up to this long.",
    )
    login_rate_limit: str = Field(
        default="10/minute", description="Failed logins allowed per client, in `limits` notation."
    )
    rate_limit_storage: str = Field(
        default="memory://", description="Where failed logins are counted (memory://, redis://...)."
    )
    trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client address from X-Forwarded-For (only behind a trusted proxy).",
    )

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode("utf-8")) < 32:
            raise ValueError("must be at least 32 bytes; generate one with: openssl rand -hex 32")
        return value
{%- elif cookiecutter.auth == "api_key" %}

    # Keys
    key_cache_ttl_s: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a valid key is remembered (0: ask the database on every "
        "request); a revoked key keeps working for up to this long.",
    )
{%- endif %}


def load_settings() -> Settings:
    """Read the settings, turning validation errors into one readable message."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "APP_" + "_".join(str(part) for part in error["loc"]).upper()
            message = error["msg"]
            if error["type"] == "missing":
                message = "is required but not set"
            lines.append(f"{name}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
