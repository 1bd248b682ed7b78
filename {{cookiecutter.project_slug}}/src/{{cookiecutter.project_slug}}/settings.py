"""Service configuration, read once from the environment (prefix ``APP_``) and a ``.env`` file.

Every setting is listed in ``.env.example``. Invalid values stop the service at start-up with a
message that names the variable, instead of failing on the first request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, {% if cookiecutter.auth == "jwt" %}SecretStr, {% endif %}ValidationError, field_validator, model_validator
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
{%- if cookiecutter.auth in ["jwt", "api_key"] %}


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
        description="Model artifact to serve (a local file); empty serves the demo model.",
    )
    model_uri: str = Field(
        default="",
        description="Where the model is published instead: a path, s3://bucket/key, "
        "https://host/path or models:/<name>@<alias> (an MLflow registry, MLFLOW_TRACKING_URI).",
    )
    model_sha256: str = Field(
        default="",
        pattern=r"^([0-9a-fA-F]{64})?$",
        description="The SHA-256 the artifact's bytes must have; empty: not checked.",
    )
    model_cache_dir: Path | None = Field(
        default=None,
        description="Downloaded artifacts, by content digest; empty: a folder in the temp dir.",
    )
    model_poll_s: float = Field(
        default=0.0,
        ge=0,
        description="Check the model's source for a new version this often (0: never).",
    )
    model_keep_versions: int = Field(
        default=2, ge=1, description="Versions kept loaded (current and previous), for rollback."
    )
    model_allow_signature_change: bool = Field(
        default=False,
        description="Let a new version change the features, types or classes callers send.",
    )
    model_name: str = Field(
        default="{{ cookiecutter.project_slug.replace('_', '-') }}",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="The name reported by /model and used in model routes.",
    )
{%- if cookiecutter.model_framework == "sklearn" %}
    model_trusted_types: str = Field(
        default="",
        description="Comma-separated types or modules (your own package, say) a model artifact "
        "may contain beyond scikit-learn, NumPy and SciPy; pickle is refused whatever this says.",
    )
{%- endif %}
{%- if cookiecutter.use_prometheus %}
    reference_path: Path | None = Field(
        default=None,
        description="Reference statistics of the training data, for input drift metrics; "
        "empty: <model>.reference.json beside the model, if it is there.",
    )
    monitor_max_features: int = Field(
        default=20,
        ge=0,
        description="Input drift is counted for this many features (the first, in order).",
    )
{%- endif %}

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
    max_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Most rows of waiting requests stacked into one model call (1: off); "
        "empty or `auto`: measured on the model at start-up.",
    )
    max_batch_wait_ms: float = Field(
        default=0.0,
        ge=0,
        description="How long a batch may wait to fill up while other model calls run "
        "(0: it takes what is waiting and never waits for more).",
    )

    # Quotas, shared counters
    rate_limit: str = Field(
        default="",
        description="Inference requests allowed per client, in `limits` notation "
        "(`100/second`, `1000/minute;20/second`); empty: no quota.",
    )
    rate_limit_storage: str = Field(
        default="memory://",
        description="Where quotas{{ ' and failed logins' if cookiecutter.auth == 'jwt' else '' }} are counted: memory:// (per process) or "
        "redis://host:port/db (shared by every process and replica).",
    )
    trust_forwarded_for: bool = Field(
        default=False,
        description="Take the client address from X-Forwarded-For (only behind a trusted proxy).",
    )

    # Browsers and transport
    cors_origins: str = Field(
        default="",
        description="Comma-separated origins whose scripts may call the service; empty: none.",
    )
    ssl_certfile: Path | None = Field(default=None, description="Serve HTTPS with this cert.")
    ssl_keyfile: Path | None = Field(default=None, description="The certificate's private key.")
    ssl_ca_certs: Path | None = Field(
        default=None, description="Require client certificates signed by these CAs (mutual TLS)."
    )

{%- if cookiecutter.model_framework == "sklearn" %}

    @property
    def trusted_types(self) -> tuple[str, ...]:
        return tuple(name.strip() for name in self.model_trusted_types.split(",") if name.strip())
{%- endif %}

    @field_validator("max_batch_size", mode="before")
    @classmethod
    def _auto_is_measured(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return None
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        if value.strip():
            parse_many(value)  # ValueError names what it cannot read
        return value.strip()

    @field_validator("rate_limit_storage")
    @classmethod
    def _storage_is_known(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must be memory:// or a redis:// (rediss://) URL")
        return value

    @model_validator(mode="after")
    def _one_model_source(self) -> Settings:
        if self.model_path is not None and self.model_uri:
            raise ValueError("set APP_MODEL_URI or APP_MODEL_PATH, not both")
        return self

    @model_validator(mode="after")
    def _tls_files_go_together(self) -> Settings:
        if (self.ssl_keyfile or self.ssl_ca_certs) and not self.ssl_certfile:
            raise ValueError("APP_SSL_KEYFILE and APP_SSL_CA_CERTS need APP_SSL_CERTFILE")
        return self
{%- if cookiecutter.auth == "jwt" %}

    # Tokens
    secret_key: SecretStr = Field(description="HMAC key for tokens: at least 32 bytes of UTF-8.")
    previous_secret_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated retired keys: they verify the tokens they signed, never "
        "sign; remove one APP_TOKEN_EXPIRE_MINUTES after the rotation.",
    )
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

    @field_validator("secret_key")
    @classmethod
    def _secret_key_is_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode("utf-8")) < 32:
            raise ValueError("must be at least 32 bytes; generate one with: openssl rand -hex 32")
        return value

    @field_validator("previous_secret_keys")
    @classmethod
    def _previous_keys_are_long_enough(cls, value: SecretStr) -> SecretStr:
        if any(len(key.encode("utf-8")) < 32 for key in split_list(value.get_secret_value())):
            raise ValueError("each key must be at least 32 bytes")
        return value
{%- elif cookiecutter.auth == "oidc" %}

    # Tokens from the identity provider
    oidc_issuer: str = Field(
        description="The provider's issuer URL, exactly as its tokens' `iss` claim spells it."
    )
    oidc_audience: str = Field(description="The `aud` claim this service's tokens carry.")
    oidc_jwks_url: str = Field(
        default="", description="The provider's key set URL; empty: from its discovery document."
    )
    oidc_algorithms: str = Field(
        default="RS256,ES256", description="Comma-separated signature algorithms accepted."
    )
    oidc_predict_scope: str = Field(
        default="predict", description="The provider's scope that grants calling the model."
    )
    oidc_admin_scope: str = Field(
        default="admin", description="The provider's scope that grants administration."
    )
    oidc_refresh_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="At most one fetch of the provider's keys per this many seconds (a token "
        "with an unknown key id asks for one).",
    )
    oidc_keys_max_age_s: float = Field(
        default=3600.0, gt=0, description="Re-read the provider's keys once they are this old."
    )
    oidc_timeout_s: float = Field(default=5.0, gt=0, le=60)
    oidc_leeway_s: int = Field(default=30, ge=0, le=300)

    @field_validator("oidc_issuer", "oidc_jwks_url")
    @classmethod
    def _is_http_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) URL")
        return value

    @field_validator("oidc_algorithms")
    @classmethod
    def _algorithms_are_asymmetric(cls, value: str) -> str:
        names = split_list(value)
        unknown = sorted(set(names) - ASYMMETRIC_ALGORITHMS)
        if not names or unknown:
            known = ", ".join(sorted(ASYMMETRIC_ALGORITHMS))
            raise ValueError(f"unknown or symmetric algorithm(s) {unknown}; choose from {known}")
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
{%- if cookiecutter.auth == "oidc" %}


# Signatures a provider makes with a private key and anyone checks with its public key. An HMAC
# "key" would be shared, and with a public key as the secret anyone could sign.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
{%- endif %}


def split_list(text: str) -> list[str]:
    """A comma-separated setting as a list, without blanks."""
    return [item.strip() for item in text.split(",") if item.strip()]


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
            # A check of several settings together names them in its message.
            lines.append(f"{name}: {message}" if error["loc"] else message)
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
