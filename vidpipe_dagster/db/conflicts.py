"""What a database error means for the caller: a lock conflict to retry, or an outage.

Every writer takes row locks in one order (see :mod:`vidpipe_dagster.domain.lifecycle`), so
a deadlock between vidpipe's own writers should not happen; one with a writer outside
vidpipe (the editor shares the database), a serialisation failure, or a SQLite writer that
waited past its busy timeout still can. :func:`retry_conflicts` reruns such a transaction a
bounded number of times, with jittered backoff, inside the same request or call.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar, overload

from sqlalchemy import exc

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

CONFLICT_SQLSTATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure."""

CONFLICT_ATTEMPTS = 6
"""How many times a transaction that lost a lock conflict is run in all."""

SQLITE_ATTEMPTS = 2
"""How many times a transaction is run in all when SQLite stayed busy past its timeout."""

_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", error)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_conflict(error: BaseException) -> bool:
    """A deadlock, a serialisation failure or a busy SQLite database: worth running again."""
    if not isinstance(error, exc.DBAPIError):
        return False
    if _sqlstate(error) in CONFLICT_SQLSTATES:
        return True
    return isinstance(error, exc.OperationalError) and any(
        text in str(error.orig).lower() for text in _SQLITE_BUSY
    )


def is_unavailable(error: BaseException) -> bool:
    """The database cannot be reached: refused or lost connections, an exhausted pool."""
    if isinstance(error, exc.TimeoutError):
        return True
    if not isinstance(error, exc.DBAPIError) or is_conflict(error):
        return False
    if error.connection_invalidated:
        return True
    return isinstance(error, exc.OperationalError | exc.InterfaceError)


def backoff_seconds(attempt: int) -> float:
    """Jittered exponential pause before attempt ``attempt + 1`` (10 ms, 20 ms, 40 ms ...)."""
    return random.uniform(0.5, 1.5) * 0.01 * 2**attempt


@overload
def retry_conflicts(fn: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def retry_conflicts(
    fn: None = None,
    *,
    attempts: int = CONFLICT_ATTEMPTS,
    before_retry: Callable[..., None] | None = None,
) -> Callable[[Callable[P, T]], Callable[P, T]]: ...


def retry_conflicts(
    fn: Callable[P, T] | None = None,
    *,
    attempts: int = CONFLICT_ATTEMPTS,
    before_retry: Callable[..., None] | None = None,
) -> Callable[P, T] | Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function that runs one whole transaction so lock conflicts rerun it.

    The function must be safe to run again after its transaction rolled back (it starts
    its own, or ``before_retry`` is called with the same arguments to roll the caller's
    session back first). After ``attempts`` runs the last conflict is raised.
    """

    def decorate(func: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(func)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            for attempt in range(attempts):
                try:
                    return func(*args, **kwargs)
                except exc.DBAPIError as error:
                    # A busy SQLite database already waited its whole busy timeout.
                    allowed = attempts if _sqlstate(error) else min(attempts, SQLITE_ATTEMPTS)
                    if not is_conflict(error) or attempt >= allowed - 1:
                        raise
                    log.info(
                        "%s lost a lock conflict (%s), running it again",
                        func.__qualname__,
                        _sqlstate(error) or type(error.orig).__name__,
                    )
                    if before_retry is not None:
                        before_retry(*args, **kwargs)
                    time.sleep(backoff_seconds(attempt))
            raise AssertionError("unreachable")

        return run

    return decorate(fn) if fn is not None else decorate
