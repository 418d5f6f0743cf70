"""API tokens: created once and shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import ApiToken, utcnow
from vidpipe_dagster.domain import events

TOKEN_PREFIX = "vp_"
USE_RESOLUTION = timedelta(minutes=1)
"""``last_used_at`` is written at most this often per token, so reads stay reads."""


def hash_token(token: str) -> str:
    """The sha256 hex digest stored for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, name: str, admin: bool = False) -> str:
    """Store a new token named ``name`` and return its only plain-text copy."""
    if not name or not name.strip():
        raise ValueError("A token needs a name")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name.strip(), token_sha256=hash_token(token), admin=admin))
    session.flush()
    return token


def authenticate(session: Session, token: str) -> ApiToken | None:
    """The live (unrevoked) token record matching ``token``, or None."""
    if not token:
        return None
    return session.scalars(
        select(ApiToken).where(
            ApiToken.token_sha256 == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    ).one_or_none()


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, live and revoked, oldest first."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)))


def revoke_tokens(session: Session, *, name: str) -> int:
    """Revoke the live tokens named ``name``; how many were revoked."""
    result = session.execute(
        update(ApiToken)
        .where(ApiToken.name == name.strip(), ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    # An UPDATE gives a CursorResult; Session.execute is typed with the base Result.
    revoked = cast(CursorResult[Any], result).rowcount or 0
    if revoked:
        events.tokens_changed(session)
    return revoked


def use_due(record: ApiToken) -> bool:
    """Whether a use of ``record`` should be written (none within :data:`USE_RESOLUTION`)."""
    now = utcnow()
    last = record.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    return last is None or now - last >= USE_RESOLUTION


def note_use(session: Session, record: ApiToken) -> None:
    """Record that ``record`` was just used, unless that was recorded within a minute."""
    if not use_due(record):
        return
    now = utcnow()
    session.execute(update(ApiToken).where(ApiToken.id == record.id).values(last_used_at=now))
    session.commit()
    record.last_used_at = now
