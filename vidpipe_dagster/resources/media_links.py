"""Signed ``/v1/media/{key}`` URLs: how the API serves locally stored media to a browser.

With local storage there is no presigned URL a browser can follow, so the API serves the
file itself at ``/v1/media/<key>?expires=<unix seconds>&signature=<hex HMAC-SHA256 of
"key\\nexpires">`` (``api.routes.media``). The key is ``VIDPIPE_MEDIA_SIGNING_KEY``, else a
key file made once under ``VIDPIPE_HOME``, so every process of one home (the API, the demo,
Dagster's run workers) signs URLs the API accepts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vidpipe_dagster.resources.providers.base import reveal
from vidpipe_dagster.settings import Settings

MEDIA_PREFIX = "/v1/media"
KEY_FILE = "media-signing.key"


@cache
def _key_file(home: Path) -> bytes:
    """The signing key kept under ``VIDPIPE_HOME`` (made once, readable by its owner only)."""
    path = home / KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:
            with path.open("x", encoding="ascii") as out:
                path.chmod(0o600)
                out.write(secrets.token_hex(32))
        except FileExistsError:
            pass
    return path.read_text(encoding="ascii").strip().encode()


def signing_key(settings: Settings) -> bytes:
    """``VIDPIPE_MEDIA_SIGNING_KEY``, else the key file under ``VIDPIPE_HOME``."""
    configured = reveal(settings.media_signing_key)
    if configured:
        return configured.encode()
    return _key_file(settings.resolved_home)


def sign(settings: Settings, *, key: str, expires: int) -> str:
    """The hex HMAC-SHA256 of ``key`` and ``expires``."""
    message = f"{key}\n{expires}".encode()
    return hmac.new(signing_key(settings), message, hashlib.sha256).hexdigest()


def media_url(settings: Settings, *, base_url: str, key: str, seconds: int) -> str:
    """An absolute URL of the API at ``base_url`` serving ``key`` for ``seconds`` from now."""
    return _signed_url(settings, base_url=base_url, key=key, expires=int(time.time()) + seconds)


def _signed_url(settings: Settings, *, base_url: str, key: str, expires: int) -> str:
    signature = sign(settings, key=key, expires=expires)
    base = base_url.rstrip("/")
    return f"{base}{MEDIA_PREFIX}/{quote(key)}?expires={expires}&signature={signature}"


def browser_link(storage: Any, settings: Settings, key: str) -> tuple[str, int]:
    """A URL that opens ``key`` in a browser, and the unix time it expires.

    Valid for ``VIDPIPE_MATERIALIZATION_LINK_SECONDS``: a presigned GET on S3, else a
    signed URL of the API at ``VIDPIPE_PUBLIC_API_URL`` (``vidpipe dev`` serves it there).
    Dagster's materializations carry it.
    """
    seconds = int(settings.materialization_link_seconds)
    expires = int(time.time()) + seconds
    if getattr(storage, "path_for", None) is None:
        return storage.browser_url(key, expires_in=seconds), expires
    url = _signed_url(settings, base_url=settings.public_api_url, key=key, expires=expires)
    return url, expires
