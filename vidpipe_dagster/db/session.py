"""Engines and sessions for the pipeline database (PostgreSQL or the embedded SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.settings import get_settings, normalize_database_url


def make_engine(url: str, **kwargs) -> Engine:
    """Create an engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn) -> None:
            # Writers serialise at BEGIN so read-check-write lifecycle calls are atomic.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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
