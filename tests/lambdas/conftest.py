"""Handlers under test put their temp directories in ``lambda_tmp`` so tests can inspect it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.runtime import TMPDIR_ENV


@pytest.fixture
def lambda_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory the handlers must leave empty again."""
    root = tmp_path / "lambda-tmp"
    root.mkdir()
    monkeypatch.setenv(TMPDIR_ENV, str(root))
    return root


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A local "bucket" for handler outputs."""
    path = tmp_path / "bucket"
    path.mkdir()
    return path
