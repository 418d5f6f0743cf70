"""One listener per API process that fans live-status events out to every open stream.

The streams themselves never touch the database while idle: a single thread waits for news
and, when there is some, reads the new events once (``id > cursor``) and hands each to the
streams of its pipeline. On PostgreSQL it waits on one ``LISTEN vidpipe_events`` connection
(writers ``NOTIFY`` in their transaction), so idle streams cost no statement at all; on
SQLite it is woken at once by commits in this process and looks for other processes' commits
with ``PRAGMA data_version`` every ``VIDPIPE_EVENT_POLL_SECONDS``, however many streams are
open. The thread starts with the first stream and ends a while after the last one closed.

A stream is a :class:`Subscription`: opened before the stream reads its own backlog, so
every event committed after that read reaches its queue (the stream drops ids it already
sent).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
import uuid as uuid_lib
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.domain import events

log = logging.getLogger(__name__)

QUEUE_LIMIT = 5000
"""Events a stream may fall behind by before it is sent a fresh snapshot instead."""

LINGER_SECONDS = 10.0
"""How long the listener keeps its connection after the last stream closed."""

_WAIT_SLICE_SECONDS = 0.2


@dataclass(frozen=True)
class Delivered:
    """One event as the hub hands it to a stream."""

    id: int
    pipeline_id: uuid_lib.UUID
    kind: str
    payload: dict[str, Any]


OVERFLOW = Delivered(id=-1, pipeline_id=uuid_lib.UUID(int=0), kind="overflow", payload={})
"""Put on a queue that filled up: the stream resynchronises with a snapshot."""


class Subscription:
    """One open stream's place in the hub: a queue of events of one pipeline."""

    def __init__(
        self, hub: EventHub, pipeline_id: uuid_lib.UUID, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.hub = hub
        self.pipeline_id = pipeline_id
        self.loop = loop
        self.queue: asyncio.Queue[Delivered] = asyncio.Queue(maxsize=QUEUE_LIMIT + 1)
        self.ready = threading.Event()
        self._overflowed = False

    def deliver(self, item: Delivered) -> None:
        """Queue ``item`` from the hub's thread."""
        self.loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: Delivered) -> None:
        if self._overflowed:
            return
        if self.queue.qsize() >= QUEUE_LIMIT:
            self._overflowed = True
            item = OVERFLOW
        self.queue.put_nowait(item)

    def resynchronised(self) -> None:
        """The stream is about to read a snapshot after an overflow; queue events again."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self._overflowed = False

    def close(self) -> None:
        """Leave the hub (idempotent)."""
        self.hub._remove(self)


class EventHub:
    """The process's one event listener for the streams of one app."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        max_streams: int,
        poll_seconds: float,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        self.sessions = sessions
        self.max_streams = max_streams
        self.poll_seconds = poll_seconds
        self.linger_seconds = linger_seconds
        self.statements = 0
        """Statements the listener sent on its own connection (LISTEN, data_version)."""
        self._engine: Engine = sessions.kw["bind"]
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._cursor: int | None = None

    @property
    def open_streams(self) -> int:
        """How many streams are open now."""
        with self._lock:
            return len(self._subscriptions)

    def open(
        self, pipeline_id: uuid_lib.UUID, loop: asyncio.AbstractEventLoop
    ) -> Subscription | None:
        """Join the hub for ``pipeline_id``; None when ``max_streams`` are already open."""
        with self._lock:
            if len(self._subscriptions) >= self.max_streams:
                return None
            subscription = Subscription(self, pipeline_id, loop)
            self._subscriptions.add(subscription)
            if self._cursor is not None:
                subscription.ready.set()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="vidpipe-event-hub", daemon=True
                )
                self._thread.start()
        self._wake.set()
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def _wake_up(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        events.add_waker(self._wake_up)
        try:
            while not self._finished():
                try:
                    self._listen()
                except Exception as error:
                    log.warning("live-status listener: %s; retrying in 1 s", error)
                    log.debug("live-status listener failure", exc_info=True)
                    time.sleep(1.0)
        finally:
            events.remove_waker(self._wake_up)

    def _finished(self) -> bool:
        with self._lock:
            if self._subscriptions:
                return False
            self._thread = None
            self._cursor = None
            return True

    def _listen(self) -> None:
        waiter: _PostgresWaiter | _SqliteWaiter = (
            _PostgresWaiter(self)
            if self._engine.dialect.name == "postgresql"
            else _SqliteWaiter(self)
        )
        idle_since: float | None = None
        try:
            if self._cursor is not None:
                self._fetch()
            while True:
                with self._lock:
                    subscriptions = list(self._subscriptions)
                    if not subscriptions:
                        self._cursor = None
                if not subscriptions:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > self.linger_seconds:
                        return
                else:
                    idle_since = None
                    if self._cursor is None:
                        self._start_cursor(subscriptions)
                if waiter.wait() and self._cursor is not None:
                    self._fetch()
        finally:
            waiter.close()

    def _start_cursor(self, subscriptions: list[Subscription]) -> None:
        """Read the newest id once the listener is live; streams may read their backlog."""
        with self.sessions() as session:
            cursor = events.latest_id(session)
        with self._lock:
            self._cursor = cursor
            for subscription in self._subscriptions:
                subscription.ready.set()

    def _fetch(self) -> None:
        assert self._cursor is not None
        while True:
            with self.sessions() as session:
                rows = events.events_after(session, self._cursor)
                batch = [
                    Delivered(id=r.id, pipeline_id=r.pipeline_id, kind=r.kind, payload=r.payload)
                    for r in rows
                ]
            if not batch:
                return
            with self._lock:
                subscriptions = list(self._subscriptions)
                self._cursor = batch[-1].id
            for item in batch:
                for subscription in subscriptions:
                    if subscription.pipeline_id == item.pipeline_id:
                        subscription.deliver(item)
            if len(batch) < 1000:
                return


class _PostgresWaiter:
    """``LISTEN`` on a connection of its own; a wait ends on a notification."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        url = hub._engine.url.set(drivername="postgresql")
        self.connection = psycopg.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            application_name="vidpipe-events",
        )
        self.connection.execute(f"LISTEN {events.CHANNEL}")
        hub.statements += 1

    def wait(self) -> bool:
        """True after a notification; False after a short quiet spell (no statement sent)."""
        if self.hub._wake.is_set():
            self.hub._wake.clear()
        for _notification in self.connection.notifies(timeout=_WAIT_SLICE_SECONDS, stop_after=1):
            return True
        return False

    def close(self) -> None:
        self.connection.close()


class _SqliteWaiter:
    """A commit here wakes the wait; other processes' commits show in ``data_version``."""

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub
        database = hub._engine.url.database or ":memory:"
        self.connection = sqlite3.connect(database, check_same_thread=False)
        self.version = self._data_version()

    def _data_version(self) -> int:
        self.hub.statements += 1
        return self.connection.execute("PRAGMA data_version").fetchone()[0]

    def wait(self) -> bool:
        """True when this process committed events or another process wrote the database."""
        woken = self.hub._wake.wait(self.hub.poll_seconds)
        self.hub._wake.clear()
        version = self._data_version()
        changed = version != self.version
        self.version = version
        return woken or changed

    def close(self) -> None:
        self.connection.close()
