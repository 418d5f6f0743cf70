"""Local storage must be one directory for every process: a second directory is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.resources.shared_storage import (
    MARKER,
    StorageNotSharedError,
    verify_shared_storage,
)
from vidpipe_dagster.settings import Settings


def _settings(database_url: str, root: Path) -> Settings:
    return Settings(database_url=database_url, storage_url=root.as_uri())


def test_every_process_on_the_same_directory_is_accepted(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    for _ in range(3):
        verify_shared_storage(_settings(database_url, root), sessions)
    assert (root / MARKER).read_text().strip()


def test_a_directory_the_first_process_does_not_share_is_refused(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    verify_shared_storage(_settings(database_url, tmp_path / "host-a"), sessions)
    other = tmp_path / "host-b"

    with pytest.raises(StorageNotSharedError) as refused:
        verify_shared_storage(_settings(database_url, other), sessions)

    message = refused.value.message
    assert message.startswith(f"VIDPIPE_STORAGE_URL={other.as_uri()} is not the media directory")
    assert "VIDPIPE_STORAGE_URL=s3://bucket/prefix" in message


def test_a_moved_directory_is_accepted_once_its_marker_is_restored(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first = tmp_path / "old"
    verify_shared_storage(_settings(database_url, first), sessions)
    moved = tmp_path / "new"
    with pytest.raises(StorageNotSharedError):
        verify_shared_storage(_settings(database_url, moved), sessions)

    (moved / MARKER).write_text((first / MARKER).read_text())
    verify_shared_storage(_settings(database_url, moved), sessions)


def test_sqlite_and_s3_are_not_checked(
    database_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    verify_shared_storage(_settings(database_url, tmp_path / "a"), sessions)
    sqlite = Settings(
        database_url=f"sqlite:///{tmp_path}/x.db", storage_url=(tmp_path / "b").as_uri()
    )
    verify_shared_storage(sqlite, sessions)
    s3 = Settings(database_url=database_url, storage_url="s3://bucket/prefix")
    verify_shared_storage(s3, sessions)
    assert not (tmp_path / "b").exists()
