"""Request dependencies: the database session, the admin token, and wrapped JSON bodies."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from functools import cache, partial
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
import pydantic
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError, _describe
from api.read_cache import ReadCache, Ticket
from vidpipe_dagster.db.conflicts import is_unavailable, retry_conflicts
from vidpipe_dagster.db.models import ApiToken
from vidpipe_dagster.domain.events import TOKENS
from vidpipe_dagster.domain.tokens import authenticate, hash_token, note_use, use_due

Model = TypeVar("Model", bound=pydantic.BaseModel)

CLOSING_THREADS = 8
"""Threads that may close sessions at once, apart from the handlers' pool."""

log = logging.getLogger(__name__)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for this request; handlers commit what they write, the rest rolls back.

    Made on the event loop (no connection until a statement runs); closed there when it
    holds no connection, else on a thread of its own limiter, since closing then rolls back
    and the handlers' threads may all be waiting for the connection it gives back.
    """
    request.state.database_began = time.monotonic()
    session = request.app.state.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await anyio.to_thread.run_sync(_close, session, limiter=_close_limiter())
        else:
            _close(session)


@cache
def _close_limiter() -> anyio.CapacityLimiter:
    return anyio.CapacityLimiter(CLOSING_THREADS)


def _close(session: Session) -> None:
    try:
        session.close()
    except SQLAlchemyError as error:
        if not is_unavailable(error):
            raise
        # The connection died after the response was built: the pool discards it and
        # the outage is reported by the next request that needs the database.


SessionDep = Annotated[Session, Depends(get_session)]


def _roll_back_sessions(*args: Any, **kwargs: Any) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, Session):
            value.rollback()


retry_transaction = retry_conflicts(before_retry=_roll_back_sessions)
"""Decorate a write handler so a lock conflict rolls its session back and reruns it.

The handler must do nothing outside the database before it commits (it notifies after)."""


def end_transaction(session: Session) -> None:
    """End the request's transaction (and give back its connection) before the handler
    waits on something outside the database: Dagster, a provider, storage.

    Nothing must be left unwritten: a handler commits its writes before it calls this.
    Loaded objects stay readable (sessions keep them loaded after commit); touching an
    unloaded attribute afterwards would open a new transaction.
    """
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("end_transaction() with unwritten changes; commit them first")
    session.commit()


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="AdminToken",
    description="An admin API token (`vidpipe tokens create NAME --admin`).",
)
"""The security scheme in the OpenAPI document; :func:`require_admin` does the checking."""


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, None when absent or blank."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def require_admin(
    request: Request,
    session: SessionDep,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
) -> ApiToken:
    """The caller's admin token: 401 when missing or unknown, 403 when not admin.

    A verified token is kept by the read cache (:mod:`api.read_cache`) for up to
    ``VIDPIPE_TOKEN_CACHE_SECONDS``; a revocation drops it as soon as it commits.
    """
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise ApiError(401, "Missing bearer token")
    cache = request.app.state.read_cache
    digest = hash_token(token)
    record = cache.token(digest)
    if record is None:
        record = await cache.load(
            f"token:{digest}", watch=TOKENS, read=partial(_verify, session, token, cache)
        )
    elif use_due(record) or cache.ageing(digest, token=True):
        cache.refresh(
            f"token:{digest}",
            watch=TOKENS,
            read=partial(_verify_apart, request.app.state.sessions, token, cache),
        )
    if record is None:
        raise ApiError(401, "Invalid or revoked token")
    if not record.admin:
        raise ApiError(403, "Admin access required")
    return record


def _verify(session: Session, token: str, cache: ReadCache, ticket: Ticket) -> ApiToken | None:
    """The live record of ``token`` from the database, its use noted, offered to the cache;
    the transaction ends here, giving its connection back before the handler waits for a
    thread."""
    digest = hash_token(token)
    record = authenticate(session, token)
    if record is not None:
        _note_use(session, record)
        if inspect(record).expired_attributes:
            session.refresh(record)
        session.expunge(record)
        cache.keep_token(digest, record, ticket)
    else:
        cache.forget_token(digest)
    # The handler runs on another thread hop; its connection must not wait with it.
    session.rollback()
    return record


def _verify_apart(
    sessions: sessionmaker[Session], token: str, cache: ReadCache, ticket: Ticket
) -> ApiToken | None:
    """:func:`_verify` in a session of its own: the cached record's successor read ahead
    of its expiry, or its use noted once a minute, while requests go on with it."""
    with sessions() as session:
        return _verify(session, token, cache, ticket)


def _note_use(session: Session, record: ApiToken) -> None:
    """Keep ``last_used_at`` (for ``vidpipe tokens list``); never fail a request over it."""
    try:
        note_use(session, record)
    except SQLAlchemyError:
        session.rollback()
        log.debug("could not record the use of token %r", record.name, exc_info=True)


AdminToken = Annotated[ApiToken, Depends(require_admin)]


class Wrapped:
    """A parsed body: the model, and which of its fields the client actually sent."""

    def __init__(self, model: pydantic.BaseModel, sent: dict[str, Any]) -> None:
        self.model = model
        self.sent = sent


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than {limit} bytes")
    from starlette.requests import ClientDisconnect

    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"Request body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Nobody is left to answer; a 400 ends the request quietly instead of a traceback.
        raise ApiError(400, "The client disconnected before sending the whole body") from None
    return b"".join(chunks)


MAX_JSON_DEPTH = 64


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_number(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(422, "Numbers in the request body must be finite")
    return value


def _parse_json(raw: bytes) -> Any:
    """``raw`` parsed as strict JSON (no NaN or Infinity), 400 / 422 when it is not usable."""
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_number)
    except RecursionError as error:
        raise ApiError(
            400, f"Request body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from error
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiError(400, "Request body is not valid JSON") from error
    _check_storable(data, depth=0)
    return data


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise ApiError(422, "Text in the request body cannot contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(422, "Text in the request body must be valid Unicode") from error


def _check_storable(value: Any, *, depth: int) -> None:
    """Reject what the database cannot store: NUL characters, lone surrogates, deep nesting."""
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, f"Request body is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value)
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, depth=depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_storable(item, depth=depth + 1)


def wrapped_body(key: str, model: type[Model], *, required: bool = True) -> Callable:
    """A dependency parsing ``{"<key>": {...}}`` into ``model`` (400 / 413 / 422 on misuse)."""

    async def parse(request: Request, _admin: AdminToken) -> Wrapped:
        raw = await _read_limited(request, request.app.state.settings.max_body_bytes)
        if not raw.strip():
            if not required:
                return Wrapped(model(), {})
            raise ApiError(400, f"Request body must be a JSON object with a '{key}' object")
        data = _parse_json(raw)
        if not required and isinstance(data, dict) and key not in data:
            inner: Any = data
        elif not isinstance(data, dict) or not isinstance(data.get(key), dict):
            raise ApiError(400, f"Request body must be a JSON object with a '{key}' object")
        else:
            inner = data[key]
        try:
            parsed = model.model_validate(inner)
        except pydantic.ValidationError as error:
            raise ApiError(422, _describe(error.errors(include_url=False))) from error
        return Wrapped(parsed, parsed.model_dump(exclude_unset=True))

    return parse


def body_doc(key: str, model: type[pydantic.BaseModel], *, required: bool = True) -> dict[str, Any]:
    """OpenAPI text for a wrapped body, since bodies are parsed after authentication.

    An optional body (``required=False``) may be empty, wrapped, or the bare object.
    """
    inner = model.model_json_schema()
    schema: dict[str, Any] = {"type": "object", "required": [key], "properties": {key: inner}}
    if not required:
        schema = {"anyOf": [schema, inner]}
    content = {"application/json": {"schema": schema}}
    return {"requestBody": {"required": required, "content": content}}
