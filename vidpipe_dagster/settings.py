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

    lambda_mode: Literal["local", "aws"] = "local"
    lambda_video_merger: str = "vidpipe-video-merger"
    lambda_audio_mixer: str = "vidpipe-audio-mixer"
    lambda_video_composer: str = "vidpipe-video-composer"

    providers: str | None = Field(
        default=None, description="Set to 'local' to render every AI node locally."
    )
    dagster_url: str = "http://127.0.0.1:3000"
    dagster_location: str = "vidpipe"

    max_body_bytes: int = 1_000_000

    heygen_api_key: SecretStr | None = None
    elevenlabs_api_key: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    runway_api_key: SecretStr | None = None
    remotion_function_name: str | None = None

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
