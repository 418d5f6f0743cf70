"""The editor's poll, ``GET /pipelines/{uuid}``, answered from the read cache before routing.

An open editor tab asks for its pipeline every few seconds, so this one route is most of the
API's load. When the read cache (:mod:`api.read_cache`) holds both the caller's verified
admin token and the pipeline's encoded body, and neither is due for a read of its successor,
:class:`CachedPipelineReads` sends those bytes itself: the answer is the one the route would
give, without the routing and dependency resolution that cost most of a request (about 0.2
of its 0.3 ms). Anything else, a missing, unknown or non-admin token, a body not cached or
ageing, a token use to record, goes on to the route, which answers, refreshes and refuses
exactly as before.

Installed inside the error and CORS middlewares, so its answers carry the same CORS headers.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers

from api.deps import bearer_token
from api.read_cache import ReadCache
from vidpipe_dagster.domain.errors import NotFoundError
from vidpipe_dagster.domain.pipelines import parse_uuid
from vidpipe_dagster.domain.tokens import hash_token, use_due

JSON_HEADERS = (b"content-type", b"application/json")


class CachedPipelineReads:
    """ASGI middleware: a cached pipeline GET by a cached admin token, sent at once.

    ``prefix``: the pipelines router's prefix (the GET's path is ``prefix/{uuid}``)."""

    def __init__(self, app: Any, *, prefix: str) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/") + "/"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            body = self._cached(scope)
            if body is not None:
                length = (b"content-length", str(len(body)).encode())
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [length, JSON_HEADERS],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _cached(self, scope: Any) -> bytes | None:
        path: str = scope["path"]
        if not path.startswith(self.prefix):
            return None
        tail = path[len(self.prefix) :]
        if not tail or "/" in tail:
            return None
        cache: ReadCache = scope["app"].state.read_cache
        token = bearer_token(Headers(scope=scope).get("authorization", ""))
        if token is None:
            return None
        digest = hash_token(token)
        record = cache.token(digest)
        if record is None or not record.admin or use_due(record):
            return None
        if cache.ageing(digest, token=True):
            return None
        try:
            key = str(parse_uuid(tail, what="Pipeline"))  # the route's key
        except NotFoundError:
            return None
        if cache.ageing(key):
            return None
        return cache.body(key)
