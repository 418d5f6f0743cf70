"""API tokens: created once and shown once, stored as sha256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import ApiToken

TOKEN_PREFIX = "vp_"


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
