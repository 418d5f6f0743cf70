"""The API process's read cache: encoded ``GET /pipelines/{uuid}`` bodies and verified tokens.

On PostgreSQL only. One thread listens on :data:`~vidpipe_dagster.domain.events.CHANNEL` and
:data:`~vidpipe_dagster.domain.events.CHANGES`, where every writer in any process (the API,
Dagster run workers, sensors, schedules, webhooks, the CLI) announces at commit the
pipelines it changed and token revocations; a commit in this process drops its entries at
once, before the writer's response is sent. The cache serves nothing while the listener is
not connected (and forgets everything when it reconnects), so a write is never hidden for
longer than its notification takes to arrive. Entries also expire after
``VIDPIPE_API_CACHE_SECONDS`` / ``VIDPIPE_TOKEN_CACHE_SECONDS``, which bounds what a write
that bypasses the domain (SQL by hand) can hide.

A reader takes a :meth:`ReadCache.ticket` before it reads the database and offers its body
with that ticket; a drop of the pipeline in between (a commit the read may have missed)
refuses it, so a slow read never stores what a write already replaced. :meth:`ReadCache.load`
runs one such read per key at a time: requests that miss together (an entry just expired)
share the read under way, unless a drop since it began may have made it stale.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid as uuid_lib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from vidpipe_dagster.domain import events

log = logging.getLogger(__name__)

MAX_BODIES = 2000
"""Pipelines whose bodies one process keeps (least recently stored dropped first)."""

LINGER_SECONDS = 10.0
"""The listener ends (and its connection closes) after this long without a lookup."""

_WAIT_SECONDS = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class Ticket:
    """Where the cache stood when a read began."""

    epoch: int
    sequence: int


class ReadCache:
    """Bodies by pipeline and token records by digest, dropped on any committed change."""

    def __init__(self, *, engine: Engine, body_seconds: float, token_seconds: float) -> None:
        self.enabled = engine.dialect.name == "postgresql" and (body_seconds or token_seconds)
        self.body_seconds = body_seconds
        self.token_seconds = token_seconds
        self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._lock = threading.Lock()
        self._bodies: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._tokens: dict[str, tuple[Any, float]] = {}
        self._dropped: dict[str, int] = {}
        self._epoch = 0
        self._sequence = 0
        self._live = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_lookup = time.monotonic()
        self._flights: dict[str, tuple[Ticket, asyncio.Future]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._refreshing: set[str] = set()

    @property
    def live(self) -> bool:
        """Whether the listener is connected, so the cache may serve."""
        return self._live

    def _serving(self) -> bool:
        if not self.enabled:
            return False
        self._last_lookup = time.monotonic()
        if self._thread is None:
            self._start()
        return self._live

    def body(self, pipeline_uuid: str) -> bytes | None:
        """The cached body of the pipeline, None when absent, expired or not serving."""
        if not self.body_seconds or not self._serving():
            return None
        entry = self._bodies.get(pipeline_uuid)
        if entry is None or time.monotonic() - entry[1] > self.body_seconds:
            return None
        return entry[0]

    def ticket(self) -> Ticket:
        """Take before reading the rows whose body will be offered to :meth:`keep`."""
        with self._lock:
            return Ticket(self._epoch, self._sequence)

    def _unchanged(self, name: str, ticket: Ticket) -> bool:
        return ticket.epoch == self._epoch and self._dropped.get(name, -1) <= ticket.sequence

    async def load(self, key: str, *, watch: str, read: Callable[[Ticket], T]) -> T:
        """``read(ticket)`` on the thread pool, shared by the callers of the same ``key``
        that arrive while it runs and before ``watch`` (a pipeline UUID, or ``tokens``) is
        dropped; not shared while the listener is down (no drops would be seen)."""
        loop = asyncio.get_running_loop()
        flight = self._flights.get(key)
        if flight is not None and self._live and flight[1].get_loop() is loop:
            with self._lock:
                shared = self._unchanged(watch, flight[0])
            if shared:
                try:
                    return await asyncio.shield(flight[1])
                except asyncio.CancelledError:
                    if not flight[1].cancelled():
                        raise
        ticket = self.ticket()
        future: asyncio.Future = loop.create_future()
        self._flights[key] = (ticket, future)
        try:
            result = await run_in_threadpool(read, ticket)
        except Exception as error:
            future.set_exception(error)
            future.exception()
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(result)
            return result
        finally:
            if self._flights.get(key, (None, None))[1] is future:
                del self._flights[key]

    def ageing(self, name: str, *, token: bool = False) -> bool:
        """Whether the entry of ``name`` (a pipeline UUID, or a token digest) is past half
        its lifetime: time to read its successor."""
        entries = self._tokens if token else self._bodies
        seconds = self.token_seconds if token else self.body_seconds
        entry = entries.get(name)
        return entry is not None and time.monotonic() - entry[1] > seconds / 2

    def refresh(self, key: str, *, watch: str, read: Callable[[Ticket], Any]) -> None:
        """Run :meth:`load` in the background unless a read of ``key`` is under way, so a
        hot entry is replaced before it expires and no request waits for it. ``read``
        must open its own session (the request's closes with the request)."""
        if key in self._flights or key in self._refreshing:
            return
        # Marked at once: the task registers its flight only when it first runs, and every
        # request served before then would start a read of its own (one per connection).
        self._refreshing.add(key)
        task = asyncio.get_running_loop().create_task(self._refresh(key, watch, read))
        self._tasks.add(task)
        task.add_done_callback(partial(self._refreshed, key))

    def _refreshed(self, key: str, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._refreshing.discard(key)

    async def _refresh(self, key: str, watch: str, read: Callable[[Ticket], Any]) -> None:
        try:
            await self.load(key, watch=watch, read=read)
        except Exception:
            log.debug("background read of %s failed", key, exc_info=True)

    def keep(self, pipeline_uuid: str, ticket: Ticket, body: bytes) -> None:
        """Store ``body`` unless the pipeline changed since ``ticket`` (or nothing listens)."""
        if not self.body_seconds or not self._live:
            return
        with self._lock:
            if not self._unchanged(pipeline_uuid, ticket):
                return
            self._bodies[pipeline_uuid] = (body, time.monotonic())
            self._bodies.move_to_end(pipeline_uuid)
            while len(self._bodies) > MAX_BODIES:
                self._bodies.popitem(last=False)

    def token(self, digest: str) -> Any | None:
        """The verified token record for ``digest``, None when not cached or not serving."""
        if not self.token_seconds or not self._serving():
            return None
        entry = self._tokens.get(digest)
        if entry is None or time.monotonic() - entry[1] > self.token_seconds:
            return None
        return entry[0]

    def keep_token(self, digest: str, record: Any, ticket: Ticket) -> None:
        """Remember a record just verified (unless tokens were revoked since ``ticket``)."""
        if not self.token_seconds or not self._live:
            return
        with self._lock:
            if not self._unchanged(events.TOKENS, ticket):
                return
            self._tokens[digest] = (record, time.monotonic())

    def forget_token(self, digest: str) -> None:
        """Forget one token found revoked or unknown."""
        with self._lock:
            self._tokens.pop(digest, None)

    def drop(self, names: set[str]) -> None:
        """Forget the pipelines (UUID text) and, with ``tokens`` among them, every token."""
        with self._lock:
            self._sequence += 1
            if len(self._dropped) > 10 * MAX_BODIES:
                self._clear()
                return
            for name in names:
                self._dropped[name] = self._sequence
                self._bodies.pop(name, None)
            if events.TOKENS in names:
                self._tokens.clear()

    def drop_all(self) -> None:
        """Forget everything; reads under way store nothing."""
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._epoch += 1
        self._sequence += 1
        self._bodies.clear()
        self._tokens.clear()
        self._dropped.clear()

    def stop(self) -> None:
        """End the listener (at shutdown); the cache stops serving."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="vidpipe-read-cache", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        events.add_change_listener(self.drop)
        failures = 0
        try:
            while not self._stop.is_set() and not self._idle():
                try:
                    self._listen()
                    failures = 0
                except Exception as error:
                    self._live = False
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    log.log(level, "read cache listener: %s; not caching, retrying in 1 s", error)
                    self._stop.wait(1.0)
        finally:
            self._live = False
            events.remove_change_listener(self.drop)
            with self._lock:
                self._thread = None
                self._clear()

    def _idle(self) -> bool:
        return time.monotonic() - self._last_lookup > LINGER_SECONDS

    def _listen(self) -> None:
        with psycopg.connect(
            self._url, autocommit=True, application_name="vidpipe-read-cache"
        ) as connection:
            connection.execute(f"LISTEN {events.CHANNEL}")
            connection.execute(f"LISTEN {events.CHANGES}")
            self.drop_all()
            self._live = True
            try:
                while not self._stop.is_set() and not self._idle():
                    for notification in connection.notifies(timeout=_WAIT_SECONDS):
                        self._handle(notification.payload)
            finally:
                self._live = False
                self.drop_all()

    def _handle(self, payload: str) -> None:
        first, *names = payload.split()
        if names:
            self.drop(set(names))
        elif first not in ("0", "-"):
            self.drop_all()

    @staticmethod
    def key(pipeline_uuid: uuid_lib.UUID) -> str:
        """The cache key of a pipeline: its UUID as text."""
        return str(pipeline_uuid)
