"""Local (``file://``) storage is one directory that every vidpipe process must see.

The API writes nothing there itself but serves it; code servers and run workers write and read
it. On one host, or with one volume mounted everywhere, that holds; with Dagster spread over
several hosts it silently does not: each host writes media the others cannot find. So the
directory carries a marker file with a random id, and the database records the id of the
first directory it met: a process whose directory holds another id (or none, where the
database already has one) refuses to start, naming the setting and the fix.

The embedded SQLite database is a file on one host, so with it there is nothing to check;
S3 is shared by construction.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lambdas import uris
from vidpipe_dagster.db.models import InstanceValue
from vidpipe_dagster.domain.errors import VidpipeError
from vidpipe_dagster.settings import Settings

MARKER = ".vidpipe-storage-id"
KEY = "storage_id"


class StorageNotSharedError(VidpipeError):
    """This process's ``file://`` storage is not the directory the others use."""

    status_code = 503
    error_type = "service_unavailable"


def verify_shared_storage(settings: Settings, sessions: sessionmaker[Session]) -> None:
    """Refuse a ``file://`` storage directory that the other processes do not share."""
    url = settings.resolved_storage_url
    if not url.startswith("file:") or settings.resolved_database_url.startswith("sqlite"):
        return
    root = uris.file_uri_to_path(url)
    root.mkdir(parents=True, exist_ok=True)
    local = _marker(root)
    recorded = _recorded(sessions, proposed=local)
    if local == recorded:
        return
    raise StorageNotSharedError(
        f"VIDPIPE_STORAGE_URL={url} is not the media directory the other vidpipe processes "
        f"use (its marker {MARKER} says {local}, the database expects {recorded}). Local "
        "storage needs every process (API, Dagster webserver, daemon, code servers, run "
        "workers) on one host or on one shared volume; across hosts set "
        f"VIDPIPE_STORAGE_URL=s3://bucket/prefix. If this directory is the old one moved on "
        f"purpose, write {recorded} into {root / MARKER}."
    )


def _marker(root: Path) -> str:
    """The directory's id, created (exclusively, so concurrent starters agree) if absent."""
    path = root / MARKER
    candidate = str(uuid.uuid4())
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(candidate)
    return candidate


def _recorded(sessions: sessionmaker[Session], *, proposed: str) -> str:
    """The id the database holds, recording ``proposed`` when it holds none yet."""
    with sessions() as session:
        existing = session.get(InstanceValue, KEY)
        if existing is not None:
            return existing.value
        session.add(InstanceValue(name=KEY, value=proposed))
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            winner = session.get(InstanceValue, KEY, populate_existing=True)
            if winner is None:
                raise
            return winner.value
    return proposed
