"""Engines and sessions for the pipeline database (PostgreSQL or the embedded SQLite file).

On SQLite a transaction takes the database's one write lock only when it first writes or
locks a row (``INSERT``/``UPDATE``/``DELETE``, DDL, a savepoint, ``SELECT ... FOR UPDATE``); until
then it is a plain WAL reader that never blocks a writer nor waits for one. The first such
statement of a transaction that has only read so far ends its read snapshot and begins
``BEGIN IMMEDIATE``, which waits (up to the busy timeout) for the writer ahead of it: the
statements after it see the latest committed rows, as they do on PostgreSQL under READ
COMMITTED. Writers thus serialise at their first lock, and readers (a code location
snapshotting the tables, an API GET) never see ``database is locked``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.settings import get_settings, normalize_database_url

SQLITE_BUSY_TIMEOUT_SECONDS = 30
"""How long a SQLite writer waits for the writer ahead of it before giving up."""

_TXN = "vidpipe_sqlite_transaction"
_WRITES = re.compile(
    r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|SAVEPOINT)\b", re.IGNORECASE
)


def _locks_rows(statement: str, context: Any) -> bool:
    """Whether ``statement`` writes, or is a ``SELECT ... FOR UPDATE`` (SQLite drops the
    clause from the SQL, so it is read from the statement object)."""
    if _WRITES.match(statement):
        return True
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


def _install_sqlite_transactions(engine: Engine) -> None:
    """Pragmas on connect, and the deferred-then-immediate transactions described above."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn) -> None:
        conn.info[_TXN] = "pending"

    @event.listens_for(engine, "before_cursor_execute")
    def _sqlite_lock_on_first_write(conn, _cursor, statement, _params, context, _many) -> None:
        state = conn.info.get(_TXN)
        if state not in ("pending", "read"):
            return
        raw = conn.connection.dbapi_connection
        if not _locks_rows(statement, context):
            if state == "pending":
                raw.execute("BEGIN")
                conn.info[_TXN] = "read"
            return
        if state == "read":
            raw.execute("COMMIT")
        raw.execute("BEGIN IMMEDIATE")
        conn.info[_TXN] = "write"

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _sqlite_end(conn) -> None:
        conn.info.pop(_TXN, None)


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            **kwargs,
        )
        _install_sqlite_transactions(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine`` that keeps objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@lru_cache
def default_engine() -> Engine:
    """The engine for ``VIDPIPE_DATABASE_URL`` (or the embedded SQLite file)."""
    return make_engine(get_settings().resolved_database_url)


@contextmanager
def session_scope(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    factory = factory or make_sessionmaker(default_engine())
    with factory() as session, session.begin():
        yield session
