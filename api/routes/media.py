"""``GET /v1/media/{key}``: stored media served by the API itself, under a signed URL.

With local storage there is no presigned URL a browser can follow (a ``file://`` redirect
is followed by neither a browser nor ``fetch``), so ``GET .../nodes/{n}/output`` redirects
here instead: ``?expires=<unix seconds>&signature=<hex HMAC-SHA256 of "key\\nexpires">``,
valid for ``VIDPIPE_PRESIGN_SECONDS``. No token is needed (a ``<video>`` element sends
none): the signature is the authorisation, as with S3's presigned URLs. Range requests are
answered with 206, so a video can seek.
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from api.errors import ApiError
from api.responses import errors
from vidpipe_dagster.resources.media_links import MEDIA_PREFIX, media_url, sign
from vidpipe_dagster.resources.storage import StorageError, guess_content_type
from vidpipe_dagster.settings import Settings

router = APIRouter(prefix=MEDIA_PREFIX, tags=["media"])


def signed_media_url(request: Request, key: str, *, seconds: int | None = None) -> str:
    """An absolute URL of this API serving ``key`` until ``seconds`` from now (default
    ``VIDPIPE_PRESIGN_SECONDS``); see :mod:`vidpipe_dagster.resources.media_links`."""
    settings: Settings = request.app.state.settings
    return media_url(
        settings,
        base_url=str(request.base_url),
        key=key,
        seconds=int(seconds or settings.presign_seconds),
    )


@router.head("/{key:path}", include_in_schema=False)
@router.get(
    "/{key:path}",
    response_class=FileResponse,
    responses={
        200: {"description": "The file", "content": {"*/*": {}}},
        206: {"description": "The requested byte range", "content": {"*/*": {}}},
        **errors(
            403,
            404,
            notes={
                403: "The URL is not signed, its signature is wrong, or it has expired",
                404: "No media at that key",
            },
        ),
    },
)
def media(request: Request, key: str, expires: str = "", signature: str = "") -> FileResponse:
    """The stored file at ``key`` when the URL's signature holds and has not expired."""
    settings: Settings = request.app.state.settings
    if not expires.isdigit() or not signature:
        raise ApiError(403, "Media URL is not signed; get a fresh one from the node's /output")
    if int(expires) < time.time():
        raise ApiError(403, "Media URL has expired; get a fresh one from the node's /output")
    if not hmac.compare_digest(sign(settings, key=key, expires=int(expires)), signature):
        raise ApiError(403, "Media URL signature is invalid")
    storage = request.app.state.storage()
    path_for = getattr(storage, "path_for", None)
    try:
        path = path_for(key) if path_for else None
    except StorageError as error:
        raise ApiError(404, "Media not found") from error
    if path is None or not path.is_file():
        raise ApiError(404, "Media not found")
    return FileResponse(path, media_type=guess_content_type(path.name))
