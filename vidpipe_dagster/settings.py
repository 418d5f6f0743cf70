"""Runtime configuration, read from the environment (prefix ``VIDPIPE_``).

Every default is the embedded one: a SQLite database, local object storage and in-process
FFmpeg under ``VIDPIPE_HOME``, and the ``local`` provider for AI nodes, so nothing needs an
account or the network. Secrets are ``SecretStr`` so they never show up in logs or reprs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lambdas.ffmpeg import DEFAULT_TIMEOUT_FLOOR_SECONDS, DEFAULT_TIMEOUT_PER_MEDIA_SECOND


class Settings(BaseSettings):
    """All of vidpipe's settings. Build with ``get_settings()``; tests build their own."""

    model_config = SettingsConfigDict(env_prefix="VIDPIPE_", extra="ignore")

    home: Path = Field(default=Path(".vidpipe"), description="Root for embedded state.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite under VIDPIPE_HOME when unset."
    )

    storage_url: str | None = Field(
        default=None,
        description="s3://bucket/prefix for S3, file:///path for a directory; "
        "VIDPIPE_HOME/storage when unset.",
    )
    s3_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    presign_seconds: int = 900
    public_api_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL a browser reaches the API at; Dagster's media links point "
        "there when storage is local (vidpipe dev serves the API at the default).",
    )
    materialization_link_seconds: int = Field(
        default=604800,
        ge=60,
        le=604800,
        description="How long the media link of a Dagster materialization stays valid "
        "(at most 7 days, the longest an S3 presigned URL may live).",
    )

    lambda_mode: Literal["local", "aws"] = "local"
    lambda_video_merger: str = "vidpipe-video-merger"
    lambda_audio_mixer: str = "vidpipe-audio-mixer"
    lambda_video_composer: str = "vidpipe-video-composer"

    providers: str | None = Field(
        default=None, description="Set to 'local' to render every AI node locally."
    )
    dagster_url: str = "http://127.0.0.1:3000"
    dagster_location: str = "vidpipe"
    dagster_shards: int = Field(
        default=1, ge=1, description="Code locations the pipelines are spread over."
    )
    dagster_shard: int | None = Field(
        default=None, ge=0, description="The shard this code server loads; all when unset."
    )
    code_server_memo: bool = Field(
        default=True,
        description="Build each repository and job snapshot once per code server (a wrap of "
        "two methods of Dagster's gRPC server, applied only on the Dagster version it was "
        "written for); off answers every call the way Dagster does.",
    )
    run_worker_forkserver: bool = Field(
        default=True,
        description="Fork each run worker from a process that has already imported Dagster "
        "and vidpipe (one per code server) instead of starting a new interpreter: the worker "
        "begins about a second sooner (applied only on the Dagster version it was written "
        "for); off spawns workers the way Dagster does.",
    )
    execute_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long an execute waits for its code location to compile an edit "
        "of the nodes' inputs, type or provider before answering 503 with Retry-After.",
    )

    automation: Literal["eager", "off"] = Field(
        default="eager",
        description="'eager': downstream nodes follow a changed upstream (declarative "
        "automation on every node); 'off' leaves the condition out of the compiled graph.",
    )

    max_body_bytes: int = 1_000_000
    max_event_streams: int = Field(
        default=200, ge=1, description="Live-status streams one API process serves at once."
    )
    event_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="Seconds between comment lines on an idle event stream."
    )
    event_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        description="On SQLite, how often the API looks for events other processes wrote.",
    )

    api_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On PostgreSQL, how long an API process may serve a pipeline's GET body "
        "from memory; every committed change drops it at once (0 turns the cache off).",
    )
    token_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="On PostgreSQL, how long a verified API token is trusted without a query; "
        "a revocation through vidpipe tokens revoke drops it at once (0: check every request).",
    )

    api_contract: Literal["seed", "editor"] = Field(
        default="seed",
        description="'seed': the documented Rails contract; 'editor': the later generation "
        "the admin editor speaks (drafts, single slots as UUID strings, camelCase output).",
    )
    cors_origins: str = Field(
        default="",
        description="Comma-separated browser origins allowed to call the API, e.g. "
        "http://localhost:3062; none by default.",
    )
    cors_allow_localhost: bool = Field(
        default=False,
        description="Also allow http://localhost and http://127.0.0.1 on any port "
        "(vidpipe dev turns this on).",
    )
    media_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key of the signed media URLs served with local storage; a key "
        "file under VIDPIPE_HOME is made when unset.",
    )

    heygen_api_key: SecretStr | None = None
    elevenlabs_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    runway_api_key: SecretStr | None = None
    remotion_function_name: str | None = None

    heygen_base_url: str = "https://api.heygen.com"
    heygen_api_version: Literal["v3", "v2"] = Field(
        default="v3", description="HeyGen video API: v3 (current) or the legacy v2."
    )
    elevenlabs_base_url: str = "https://api.elevenlabs.io"
    gemini_base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    runway_base_url: str = "https://api.dev.runwayml.com"
    remotion_region: str | None = Field(
        default=None, description="Region of the Remotion Lambda function; aws_region if unset."
    )
    remotion_version: str = Field(
        default="4.0.539", description="Must equal the deployed @remotion/lambda version."
    )
    remotion_lambda_endpoint_url: str | None = None

    provider_timeout_seconds: float = 30.0
    provider_connect_timeout_seconds: float = 10.0
    provider_max_attempts: int = Field(default=4, description="HTTP attempts per provider call.")
    provider_retry_after_cap_seconds: float = 60.0
    poll_concurrency: int = Field(default=50, description="Concurrent polls per provider.")
    poll_time_budget_seconds: float = Field(
        default=40.0, description="Time box for one polling pass (sensor limit is 60 s)."
    )
    heygen_max_wait_seconds: float = 1800.0
    veo_max_wait_seconds: float = 900.0
    runway_max_wait_seconds: float = 900.0
    remotion_max_wait_seconds: float = 900.0
    provider_poll_interval_seconds: int = Field(
        default=30, ge=5, description="Minimum interval of the provider polling sensor."
    )
    provider_limits: dict[str, int] = Field(
        default_factory=dict,
        description='Jobs in flight per provider, JSON: {"heygen": 3}; defaults per provider.',
    )
    provider_step_retries: int = Field(
        default=3, ge=0, description="Run-step retries after transient provider failures."
    )
    provider_retry_base_seconds: float = Field(
        default=30.0, ge=0, description="First retry delay; doubles on each retry."
    )
    webhook_base_url: str | None = Field(
        default=None,
        description="Public base URL of the API; providers that call back are sent "
        "<base>/v1/webhooks/<provider>.",
    )
    heygen_webhook_secret: SecretStr | None = None
    remotion_webhook_secret: SecretStr | None = None
    remotion_s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint of Remotion's bucket; s3_endpoint_url if unset."
    )
    ffmpeg_timeout_floor_seconds: float = Field(
        default=DEFAULT_TIMEOUT_FLOOR_SECONDS,
        ge=0,
        description="Time every ffmpeg call may take (read from the environment by lambdas/).",
    )
    ffmpeg_timeout_per_media_second: float = Field(
        default=DEFAULT_TIMEOUT_PER_MEDIA_SECOND,
        ge=0,
        description="Time an ffmpeg call may take per second of media, above the floor.",
    )
    heartbeat_interval_seconds: float = Field(
        default=15.0, gt=0, description="How often a running node's heartbeat is written."
    )
    heartbeat_timeout_seconds: float = Field(
        default=75.0,
        gt=0,
        description="A running node silent this long lost its run worker and is failed.",
    )
    price_overrides: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description='Provider price overrides in USD, JSON: {"veo3": {"<model>": 0.35}}.',
    )

    @property
    def force_local(self) -> bool:
        """Whether ``VIDPIPE_PROVIDERS=local`` (any case) makes every AI node render locally."""
        return (self.providers or "").strip().lower() == "local"

    @property
    def resolved_home(self) -> Path:
        """VIDPIPE_HOME as an absolute path (not created)."""
        return self.home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``VIDPIPE_HOME/vidpipe.db``."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{self.resolved_home / 'vidpipe.db'}"

    @property
    def cors_origin_list(self) -> list[str]:
        """``VIDPIPE_CORS_ORIGINS`` split on commas, without blanks or trailing slashes."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def resolved_storage_url(self) -> str:
        """The storage URL, defaulting to ``file://VIDPIPE_HOME/storage``."""
        return self.storage_url or (self.resolved_home / "storage").as_uri()


def normalize_database_url(url: str) -> str:
    """Map plain ``postgres://`` / ``postgresql://`` URLs onto the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
