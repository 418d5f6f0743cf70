"""One place that turns every failure into the editor's error shape.

``{"error": {"type": ..., "message": ...}}``: domain errors carry their status; FastAPI's
own 404/405 and request errors are reshaped; anything unexpected is a 500 without a trace.
The database unreachable (or a lock conflict that outlived its retries) is a 503 with
``Retry-After``, and the log gets one line when an outage starts and one when it ends
(:class:`DatabaseOutage`), not a traceback per request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidpipe_dagster.db.conflicts import is_conflict, is_unavailable
from vidpipe_dagster.domain.errors import VidpipeError

log = logging.getLogger(__name__)

HTTP_TYPES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "service_unavailable",
}


class ApiError(VidpipeError):
    """An HTTP-level error (auth, malformed body) raised by the API layer itself."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = HTTP_TYPES.get(status_code, "error")


DATABASE_RETRY_AFTER_SECONDS = 5
"""What a 503 for an unreachable database tells the client to wait before trying again."""

CONFLICT_RETRY_AFTER_SECONDS = 1
"""What a 503 for a lock conflict that outlived its retries tells the client to wait."""

DATABASE_UNAVAILABLE = (
    "The pipeline database is unreachable; retry in a few seconds "
    "(check that the database at VIDPIPE_DATABASE_URL is running)"
)
DATABASE_BUSY = "The pipeline database is busy with a conflicting change; retry the request"


def error_response(
    status_code: int, error_type: str, message: str, *, retry_after: int | None = None
) -> JSONResponse:
    """A JSON response in the error shape (with ``Retry-After`` seconds when given)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(
        status_code=status_code,
        content={"error": {"type": error_type, "message": message}},
        headers=headers,
    )


def _first_line(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else 'no detail'}"


class DatabaseOutage:
    """One log line when the database stops answering, one when it answers again.

    :meth:`down` is called for every request refused for the outage; :meth:`up` whenever a
    transaction gets a working connection (cheap when nothing is down), with
    :meth:`stamp` marking when each transaction began.

    Reports arrive later than what they report (a thread may wait for the interpreter
    between getting its connection and saying so), so each is judged by when its request
    or transaction *began*: a failure of a request that began before the last outage
    ended belongs to that outage, and a connection got by a transaction that began before
    the outage was reported does not end it. Neither makes the log flap.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._ended = -math.inf
        self._refused = 0

    def down(self, error: BaseException, *, began: float | None = None) -> None:
        """Count a refused request; log the outage when it is the first.

        ``began``: when the request started (``time.monotonic()``), None when unknown.
        """
        with self._lock:
            if self._since is None and began is not None and began < self._ended:
                return
            self._refused += 1
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.error(
            "pipeline database unreachable (%s); answering 503 until it answers again",
            _first_line(error),
        )

    @staticmethod
    def stamp(session: Session, transaction: SessionTransaction) -> None:
        """Record when a session's outermost transaction began (``after_transaction_create``:
        before it asks the pool for a connection)."""
        if transaction.parent is None:
            session.info[BEGAN] = time.monotonic()

    def up(self, session: Session, *_args: object) -> None:
        """Note a working connection (``after_begin``); log the end of an outage if one
        was in progress and the transaction began after it was reported."""
        if self._since is None:
            return
        began = session.info.get(BEGAN, math.inf)
        with self._lock:
            if self._since is None or began <= self._since:
                return
            self._ended = time.monotonic()
            seconds, refused = self._ended - self._since, self._refused
            self._since, self._refused = None, 0
        log.warning(
            "pipeline database answering again after %.1f s; %d request(s) answered 503",
            seconds,
            refused,
        )

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Hook :meth:`stamp` and :meth:`up` to every session ``sessions`` makes."""
        event.listen(sessions, "after_transaction_create", self.stamp)
        event.listen(sessions, "after_begin", self.up)


BEGAN = "vidpipe.transaction_began"
"""The ``Session.info`` key :meth:`DatabaseOutage.stamp` writes."""


def database_error_response(
    error: SQLAlchemyError, outage: DatabaseOutage, *, began: float | None = None
) -> JSONResponse | None:
    """The 503 for an unreachable database or a lasting lock conflict; None for others.

    ``began``: when the request started (see :meth:`DatabaseOutage.down`)."""
    if is_conflict(error):
        log.warning("request refused after repeated lock conflicts: %s", _first_line(error))
        return error_response(
            503, "service_unavailable", DATABASE_BUSY, retry_after=CONFLICT_RETRY_AFTER_SECONDS
        )
    if is_unavailable(error):
        outage.down(error, began=began)
        return error_response(
            503,
            "service_unavailable",
            DATABASE_UNAVAILABLE,
            retry_after=DATABASE_RETRY_AFTER_SECONDS,
        )
    return None


def _describe(errors: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        message = error.get("msg", "is invalid")
        parts.append(f"{location}: {message}" if location else message)
    return ", ".join(parts) or "Invalid request"


class UnexpectedErrors:
    """ASGI middleware answering an unexpected exception with the 500 error shape.

    Starlette sends what an ``Exception`` handler answers from its outermost middleware,
    outside CORS, so a browser could not read it. Installed before the CORS middleware,
    this one sits inside it: the 500 carries the CORS headers like every other error. A
    response already under way (a stream) cannot be replaced, so the error propagates.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            response = error_response(500, "internal_error", "Internal server error")
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (before CORS, see :class:`UnexpectedErrors`)."""
    app.add_middleware(UnexpectedErrors)

    @app.exception_handler(VidpipeError)
    async def _domain(_request: Request, error: VidpipeError) -> JSONResponse:
        response = error_response(error.status_code, error.error_type, error.message)
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            response.headers["Retry-After"] = str(int(retry_after))
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _describe(list(error.errors())))

    @app.exception_handler(SQLAlchemyError)
    async def _database(request: Request, error: SQLAlchemyError) -> JSONResponse:
        response = database_error_response(
            error,
            request.app.state.database_outage,
            began=getattr(request.state, "database_began", None),
        )
        if response is not None:
            return response
        log.error(
            "unhandled database error on %s %s",
            request.method,
            request.url.path,
            exc_info=error,
        )
        return error_response(500, "internal_error", "Internal server error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "Request failed"
        if error.status_code == 404 and message == "Not Found":
            message = "Route not found"
        return error_response(
            error.status_code, HTTP_TYPES.get(error.status_code, "error"), message
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "Internal server error")
