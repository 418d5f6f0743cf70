"""The embedded Dagster instance's run and schedule storage: Dagster's SQLite storage, with
the 30 s busy timeout Dagster already gives its event-log connections.

Dagster 1.13 opens its SQLite event-log connections with ``timeout=30``
(``dagster._core.storage.sqlite.SQLITE_BUSY_TIMEOUT_SECONDS``) but its run and schedule
storage with pysqlite's default of 5 s. On a loaded machine a write to ``runs.db`` (the
daemon's heartbeat, behind a run's writes) waited those 5 s out, and ``vidpipe dev`` printed
``database is locked`` with a traceback. These subclasses open every connection of theirs with
the same 30 s; everything else is Dagster's. ``base_dir`` may be relative: it is then under
``DAGSTER_HOME`` (as Dagster's defaults are), so the embedded dagster.yaml names no absolute
path and a home that already holds runs keeps them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool


def under_home(base_dir: str) -> str:
    """``base_dir``, or ``DAGSTER_HOME/base_dir`` when it is relative."""
    if os.path.isabs(base_dir):
        return base_dir
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise RuntimeError(f"base_dir {base_dir!r} is relative and DAGSTER_HOME is not set")
    return os.path.join(home, base_dir)


class _PatientSqlite:
    """What both storages change: where ``base_dir`` is, and the busy timeout of every
    connection. Mixed in before the Dagster class it changes."""

    _conn_string: str

    @classmethod
    def from_config_value(cls, inst_data: Any, config_value: Any) -> Any:
        base_dir = under_home(config_value["base_dir"])
        return cls.from_local(inst_data=inst_data, base_dir=base_dir)  # type: ignore[attr-defined]

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        engine = create_engine(
            self._conn_string,
            poolclass=NullPool,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        with engine.connect() as connection, connection.begin():
            yield connection


class PatientSqliteRunStorage(_PatientSqlite, SqliteRunStorage):
    """``SqliteRunStorage`` whose connections wait up to 30 s for a lock."""


class PatientSqliteScheduleStorage(_PatientSqlite, SqliteScheduleStorage):
    """``SqliteScheduleStorage`` whose connections wait up to 30 s for a lock."""
