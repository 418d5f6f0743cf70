"""Pytest fixtures for the fake provider servers (register with ``pytest_plugins``).

Each fixture starts a fresh server on a free loopback port for one test and stops it after:
``fake_elevenlabs``, ``fake_heygen``, ``fake_veo``, ``fake_runway``, ``fake_remotion``.
``fake_remotion_clients`` gives boto3 Lambda and S3 clients pointed at ``fake_remotion``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.remotion import FakeRemotionLambda
from tests.fakes.runway import FakeRunway
from tests.fakes.veo import FakeVeo


@pytest.fixture
def fake_elevenlabs() -> Iterator[FakeElevenLabs]:
    """A fake ElevenLabs API (key ``fake_elevenlabs.api_key``)."""
    with FakeElevenLabs() as server:
        yield server


@pytest.fixture
def fake_heygen() -> Iterator[FakeHeyGen]:
    """A fake HeyGen API (v3 and legacy v2/v1)."""
    with FakeHeyGen() as server:
        yield server


@pytest.fixture
def fake_veo() -> Iterator[FakeVeo]:
    """A fake Gemini API for Veo; the client's base URL is ``fake_veo.base_url``."""
    with FakeVeo() as server:
        yield server


@pytest.fixture
def fake_runway() -> Iterator[FakeRunway]:
    """A fake Runway API."""
    with FakeRunway() as server:
        yield server


@pytest.fixture
def fake_remotion() -> Iterator[FakeRemotionLambda]:
    """A fake Lambda Invoke API running Remotion's protocol, plus S3 for the output."""
    with FakeRemotionLambda() as server:
        yield server


@functools.cache
def _boto_session() -> Any:
    """One boto3 session for all tests, so service models are loaded once."""
    import boto3

    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )


@pytest.fixture
def fake_remotion_clients(fake_remotion: FakeRemotionLambda) -> tuple[Any, Any]:
    """``(lambda_client, s3_client)``: boto3 clients for ``fake_remotion``, retries off."""
    from botocore.config import Config

    session = _boto_session()
    config = Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        read_timeout=5,
        connect_timeout=2,
        s3={"addressing_style": "path"},
    )
    return (
        session.client("lambda", endpoint_url=fake_remotion.url, config=config),
        session.client("s3", endpoint_url=fake_remotion.url, config=config),
    )
