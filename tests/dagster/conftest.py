"""Fixtures of the Dagster tests: loading the code location the way Dagster does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.resources.dagster_resources import VidpipeResource


@pytest.fixture
def load_location(database_url: str) -> Callable[[], dg.Definitions]:
    """Load the code location as a code server does (state-backed component, fresh state)."""

    def load() -> dg.Definitions:
        context = DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)
        with DefinitionsLoadContext.scoped(context):
            return build_definitions(database_url=database_url)

    return load


@pytest.fixture
def resource(database_url: str, tmp_path: Path) -> VidpipeResource:
    """The vidpipe resource on the test database, local storage and the local provider."""
    return VidpipeResource(
        database_url=database_url,
        storage_url=(tmp_path / "storage").as_uri(),
        home=str(tmp_path / "home"),
        providers="local",
    )
