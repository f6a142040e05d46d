"""The one place that reads the environment: every setting, with its default."""

import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGED_MODEL_PATH = Path(__file__).parent / "classify" / "model"


class Settings(BaseSettings):
    """Settings from `AIGUILLEUR_*` environment variables (or a `.env` file)."""

    model_config = SettingsConfigDict(env_prefix="AIGUILLEUR_", env_file=".env", extra="ignore")

    # repr=False: a PostgreSQL URL may hold a password, and settings get printed in tracebacks.
    database_url: str = Field(default="sqlite:///./var/aiguilleur.db", repr=False)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)
    # How often a thread of the server (or of an import) copies SQLite's write-ahead log back
    # into the database, instead of the commit that fills it; 0: the commit does (SQLite's way).
    sqlite_checkpoint_seconds: float = Field(default=0.25, ge=0, le=60)
    model_path: Path = PACKAGED_MODEL_PATH  # a directory with model.skops and metadata.json
    confidence_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    triage_margin: float = Field(default=0.0, ge=0.0, le=1.0)
    # Where `aiguilleur train` writes new versions, one directory each.
    model_store: Path = Path("./var/models")
    # How often each process checks which model version is active (a switch made elsewhere).
    model_refresh_seconds: float = Field(default=10.0, gt=0, le=3_600)
    config_file: Path | None = None
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # An API key found valid is not read again for this long: a revocation holds within this
    # delay in every process (0: at once, one database read per request).
    key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    max_batch_items: int = Field(default=1_000, gt=0)
    # Single mentions posted concurrently are ingested together (group commit): at most this
    # many per transaction, the first of them waiting at most this long for others to join.
    ingest_group_max_items: int = Field(default=256, gt=0, le=1_000)
    ingest_group_wait_ms: float = Field(default=1.0, ge=0, le=100)
    # A post in a conversation whose ticket was resolved less than this long ago reopens it;
    # a later one opens a new ticket.
    reopen_window_hours: float = Field(default=168, ge=0)
    claim_lease_seconds: int = Field(default=900, gt=0, le=86_400)
    # The background loop (SLA timers, expired leases): under `serve` on SQLite unless set false.
    worker_in_process: bool | None = None
    worker_interval_seconds: float = Field(default=5.0, gt=0, le=3_600)
    # Outbound webhooks. http:// and loopback addresses are refused unless this development
    # setting allows them (a CRM running on the same machine).
    webhooks_allow_loopback: bool = False
    webhook_timeout_seconds: float = Field(default=15.0, gt=0, le=60)
    # An endpoint whose every attempt has failed for this long is disabled.
    webhook_disable_after_hours: float = Field(default=120.0, gt=0)
    delivery_interval_seconds: float = Field(default=0.2, gt=0, le=60)
    delivery_batch: int = Field(default=50, gt=0, le=1_000)
    delivery_concurrency: int = Field(default=8, gt=0, le=64)
    # How long a worker holds a delivery it is sending; past it (the worker died) another takes it.
    delivery_lease_seconds: float = Field(default=60.0, gt=0, le=3_600)
    # Inbound signed webhooks: source name -> Standard Webhooks secret ("whsec_...").
    inbound_webhook_secrets: dict[str, str] = Field(default_factory=dict, repr=False)
    # X (Twitter). Credentials are never stored in the database, logged or returned; they may
    # come from files in AIGUILLEUR_SECRETS_DIR (one file per setting, named like its variable).
    # The consumer secret signs Account Activity webhooks; with the consumer key and the access
    # token of the account that answers, it signs replies (OAuth 1.0a user context).
    x_consumer_key: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_token_secret: SecretStr | None = None
    # The app's bearer token reads mentions, search and the filtered stream.
    x_bearer_token: SecretStr | None = None
    # X's API address: another one for a gateway or proxy in front of it, or a local test server.
    x_api_url: str = "https://api.twitter.com"
    x_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Each watched account's mentions (and search terms) are read this often, unless the account
    # says otherwise; a new account's first read goes this far back.
    x_poll_interval_seconds: int = Field(default=60, ge=1, le=86_400)
    x_initial_lookback_minutes: int = Field(default=60, ge=0, le=10_080)
    # A worker holds an account's poll, or a reply it sends, this long; past it another takes it.
    x_lease_seconds: float = Field(default=120.0, gt=0, le=3_600)
    # A reply failing on X's side (5xx, network) is retried this many times in all, with backoff.
    x_reply_max_attempts: int = Field(default=6, ge=1, le=50)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("inbound_webhook_secrets")
    @classmethod
    def _secrets_parse(cls, secrets: dict[str, str]) -> dict[str, str]:
        from app.delivery.signing import parse_secret

        for source, secret in secrets.items():
            try:
                parse_secret(secret)
            except ValueError as error:
                raise ValueError(f"the secret of webhook source {source!r}: {error}") from error
        return secrets

    @field_validator("x_api_url")
    @classmethod
    def _x_over_tls(cls, url: str) -> str:
        """Credentials travel in every call: only over TLS, but to a local stand-in."""
        parts = urlsplit(url)
        local = parts.hostname in {"127.0.0.1", "localhost", "::1"}
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("X's API address must be https:// (http:// only on loopback)")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> "Settings":
        if self.x_lease_seconds <= self.x_timeout_seconds:
            raise ValueError("x_lease_seconds must be longer than x_timeout_seconds")
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, level: object) -> object:
        return level.upper() if isinstance(level, str) else level

    @property
    def reopen_window(self) -> timedelta:
        return timedelta(hours=self.reopen_window_hours)

    @property
    def x_reads(self) -> bool:
        """Whether X can be read (the pollers): the bearer token is set."""
        return self.x_bearer_token is not None

    @property
    def x_writes(self) -> bool:
        """Whether replies can be sent on X: the four user-context credentials are set."""
        credentials = (
            self.x_consumer_key,
            self.x_consumer_secret,
            self.x_access_token,
            self.x_access_token_secret,
        )
        return all(c is not None for c in credentials)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    secrets_dir = os.environ.get("AIGUILLEUR_SECRETS_DIR")
    return Settings(_secrets_dir=secrets_dir) if secrets_dir else Settings()
