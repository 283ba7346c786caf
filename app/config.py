"""Settings: every variable of the contract, from the environment or `.env`.

One :class:`Settings` class; :func:`get_settings` caches the process-wide
instance. Tests build ``Settings(...)`` directly and hand it to
``create_app(settings)`` instead of mutating the environment.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse_many
from pydantic import BaseModel, Field, HttpUrl, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me-in-production-this-is-not-a-secret"  # noqa: S105
ROOT_DIR = Path(__file__).resolve().parent.parent


def _split_list(value: object) -> object:
    """Accept a JSON list or a comma-separated string (``.txt,.md``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


class RemoteProcessorSettings(BaseModel):
    """One remote (``http``) processor: the HTTP service it hands manuscripts to.

    See ``app/processors/remote.py`` for the protocol the service speaks.
    """

    model_config = {"extra": "forbid"}

    url: HttpUrl
    """Where a manuscript is submitted (POST); jobs are then read at ``<url>/<job id>``."""
    headers: dict[str, str] = {}
    """Sent with every request to the service's origin, e.g. ``{"Authorization": "Bearer …"}``."""
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    """Per request: a response (or the next chunk of one) that takes longer is a transient error."""
    job_timeout_seconds: float = Field(default=3600.0, gt=0)
    """How long a submitted job may take on the service before the attempt gives up (retryable)."""
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1, le=20)
    """Tries per request on a transient error (timeout, connection error, 5xx, 408, 429)."""
    retry_initial_seconds: float = Field(default=0.5, ge=0)
    retry_max_seconds: float = Field(default=10.0, ge=0)
    breaker_failures: int = Field(default=5, ge=1)
    """Consecutive failed requests that open the circuit (calls then fail at once)."""
    breaker_reset_seconds: float = Field(default=60.0, gt=0)
    """How long the circuit stays open before one trial request is let through."""
    max_result_bytes: int = Field(default=50 * 1024 * 1024, ge=1)


class Settings(BaseSettings):
    """Configuration of one process (API and/or workers)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{ROOT_DIR / 'data' / 'novel_tasks.db'}"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    upload_dir: Path = ROOT_DIR / "uploads"
    # Where uploads and result files are kept (app/services/storage.py): "local" is
    # UPLOAD_DIR; "s3" an S3-compatible bucket shared by every API and worker host
    # (UPLOAD_DIR then holds only each worker's scratch copies).
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # One request to the bucket, retries included, gives up after this long.
    s3_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_file_size: int = Field(default=10 * 1024 * 1024, ge=1)
    allowed_extensions: Annotated[list[str], NoDecode] = [".txt", ".md"]
    max_batch_files: int = Field(default=25, ge=1, le=1000)
    # Non-file fields of an upload form: how many, and how long each (bytes).
    max_form_fields: int = Field(default=20, ge=3, le=1000)
    max_form_field_size: int = Field(default=4096, ge=64, le=1024 * 1024)
    # Every request body other than the two upload routes (JSON, the login form).
    max_json_body_size: int = Field(default=1024 * 1024, ge=1024)
    # A request body that sends nothing for this long is refused with 408.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    cors_origins: Annotated[list[str], NoDecode] = []
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)

    secret_key: str = Field(default=DEFAULT_SECRET_KEY, min_length=16)
    access_token_expire_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    admin_email: str | None = None
    admin_password: str | None = None

    worker_concurrency: int = Field(default=2, ge=0, le=256)
    task_timeout_seconds: float = Field(default=600.0, gt=0)
    task_max_retries: int = Field(default=3, ge=0, le=100)
    task_lease_seconds: float = Field(default=30.0, gt=0)
    result_ttl_days: float = Field(default=30.0, gt=0)
    worker_poll_seconds: float = Field(default=5.0, gt=0)
    task_retry_backoff_seconds: float = Field(default=2.0, ge=0)
    processors: Annotated[dict[str, str], NoDecode] = {}
    remote_processors: dict[str, RemoteProcessorSettings] = {}
    """Processors run by an HTTP service, by name (JSON); each is registered under its name."""
    processor_memory_limit_mb: int = Field(default=2048, ge=0)
    """Address-space limit of each CPU-bound attempt's process (RLIMIT_AS); 0 = none."""
    worker_stall_seconds: float = Field(default=10.0, gt=0)
    """/health is unhealthy when a pool had a free slot and due work waited this long."""

    webhook_allow_private: bool = False
    """Deliver webhooks to loopback, private, link-local and metadata addresses (local
    development and tests only: otherwise a user could make the server call inside)."""
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    """How long a delivery is retried before it is marked failed."""
    webhook_backoff_seconds: float = Field(default=5.0, ge=0)
    """First retry delay; doubles per attempt, with jitter, capped at an hour."""
    webhook_poll_seconds: float = Field(default=2.0, gt=0)
    webhook_concurrency: int = Field(default=4, ge=1, le=100)
    """Deliveries one worker process sends at once."""
    webhook_lease_seconds: float = Field(default=60.0, gt=0)
    """A delivery being sent whose sender died is taken again after this long."""
    webhook_follow_redirects: bool = False
    """Follow up to 5 redirects (each target checked like the first); off: a 3xx fails."""

    rate_limit: str = "100/minute"
    login_rate_limit: str = "10/minute"
    # Requests without a valid credential, per client IP (guessed keys, expired tokens).
    anonymous_rate_limit: str = "100/minute"
    rate_limit_storage_uri: str = "memory://"
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (IPs, networks or
    # "*"); empty: none, the client is the connection's peer whatever the headers say.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = []

    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Default: JSON in production, console elsewhere (see _default_log_format).
    log_format: Literal["console", "json"] = "console"

    @model_validator(mode="before")
    @classmethod
    def _default_log_format(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("log_format"):
            data["log_format"] = "json" if data.get("environment") == "production" else "console"
        return data

    @field_validator("allowed_extensions", "cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"expected IP addresses, networks (10.0.0.0/8) or *, got {entry!r}"
                ) from None
        return value

    @field_validator("allowed_extensions")
    @classmethod
    def _extensions(cls, value: list[str]) -> list[str]:
        normalised = []
        for ext in value:
            ext = ext.strip().lower()
            if not ext:
                continue
            if not ext.startswith("."):
                ext = "." + ext
            normalised.append(ext)
        if not normalised:
            raise ValueError("at least one extension is required")
        return normalised

    @field_validator("processors", mode="before")
    @classmethod
    def _processors(cls, value: object) -> object:
        """``name=module:attribute,…`` (extra processors, without packaging)."""
        if not isinstance(value, str):
            return value
        parsed = {}
        for item in value.split(","):
            if not item.strip():
                continue
            name, sep, target = item.partition("=")
            if not sep or ":" not in target or not name.strip():
                raise ValueError(f"expected name=module:attribute, got {item!r}")
            parsed[name.strip()] = target.strip()
        return parsed

    @field_validator("s3_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        """``novels``, ``/novels/`` and ``novels/`` are one prefix: ``novels/``."""
        value = value.strip().strip("/")
        return f"{value}/" if value else ""

    @model_validator(mode="after")
    def _register_remote_processors(self) -> Settings:
        from app.processors.registry import BUILT_IN

        for name in self.remote_processors:
            if not name or name in BUILT_IN:
                raise ValueError(f"REMOTE_PROCESSORS: {name!r} is not a free processor name")
            self.processors.setdefault(name, f"app.processors.remote:remote:{name}")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Normalise plain driver names to the async drivers the service uses."""
        for plain, async_ in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("postgresql+psycopg2://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return async_ + value[len(plain) :]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("rate_limit", "login_rate_limit", "anonymous_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '100/minute': {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET_KEY:
            raise ValueError("SECRET_KEY must be set to a private value in production")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET must be set when STORAGE_BACKEND is s3")
        if (self.admin_email is None) != (self.admin_password is None):
            raise ValueError("ADMIN_EMAIL and ADMIN_PASSWORD must be set together")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def describe_settings_error(exc: Exception) -> str:
    """A start-up message naming each bad variable (``MAX_FILE_SIZE: …``)."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]).upper() or "SETTINGS"
        lines.append(f"{name}: {error['msg']}")
    return "invalid configuration: " + "; ".join(lines)
