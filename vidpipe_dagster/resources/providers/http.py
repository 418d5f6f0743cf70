"""The HTTP client every remote provider client builds on: base URL, auth, retries.

:class:`HttpProvider` sends requests through an ``httpx.Client`` it is given (tests point it
at a fake server) or creates once and keeps, turning transport failures and error statuses
into :mod:`.errors` (:mod:`.responses` maps them). Each request names its operation, which
decides what may be retried:

- ``read`` (status, poll, list, download): timeouts, dropped connections, 408, 429 and 5xx
  are retried with backoff;
- ``submit`` (a request that creates paid work): only failures where the request cannot
  have been taken are retried (the connection could not be opened, 429, 503, 408); a
  timeout, a dropped connection or another 5xx after the request went out raises
  :class:`~.errors.SubmissionOutcomeUnknown` at once.

API keys are held as :class:`pydantic.SecretStr` (:mod:`.keys`); timeouts and retry
policies come from :mod:`.http_settings`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import httpx
from pydantic import SecretStr

from vidpipe_dagster.resources.providers.errors import (
    ProviderError,
    ResultExpiredError,
    SubmissionOutcomeUnknown,
)
from vidpipe_dagster.resources.providers.http_settings import HttpSettings, http_settings_from
from vidpipe_dagster.resources.providers.keys import require_key
from vidpipe_dagster.resources.providers.responses import (
    error_for_status,
    json_body,
    submission_transport_error,
    transport_error,
)
from vidpipe_dagster.resources.providers.retry import (
    Operation,
    RetryPolicy,
    aretry_call,
    retry_call,
)

NOT_TAKEN_STATUSES = frozenset({408, 429, 503})
"""Answers to a submission that say the provider did not take it: safe to send again."""


class HttpProvider:
    """Base for HTTP provider clients: base URL, auth headers, retries and error mapping.

    Subclasses set :attr:`name`, :attr:`env_var`, :attr:`default_base_url` and the names of
    their key and base-URL settings, and implement :meth:`auth_headers` and
    :meth:`parse_error`. ``client`` is an ``httpx.Client`` the caller owns (tests point it at a
    fake server); when omitted one is created, kept for every call and closed by
    :meth:`close` (or the context manager).
    """

    name: str = "provider"
    env_var: str = ""
    default_base_url: str = ""
    key_setting: str = ""
    base_url_setting: str = ""
    not_taken_statuses: frozenset[int] = NOT_TAKEN_STATUSES
    """Error statuses after which a submission is known not to have been taken (retried)."""

    def __init__(
        self,
        *,
        api_key: SecretStr | str,
        base_url: str | None = None,
        client: httpx.Client | None = None,
        http: HttpSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        asleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.http = http or HttpSettings()
        self._owns_client = client is None
        self.client = client or httpx.Client(timeout=self.http.httpx_timeout())
        self.sleep = sleep
        self.asleep = asleep

    @classmethod
    def from_settings(
        cls, settings: Any, *, client: httpx.Client | None = None, **extra: Any
    ) -> Self:
        """A client from vidpipe settings; :class:`MissingApiKeyError` without a key."""
        return cls(
            api_key=require_key(
                getattr(settings, cls.key_setting), env_var=cls.env_var, provider=cls.name
            ),
            base_url=getattr(settings, cls.base_url_setting),
            client=client,
            http=http_settings_from(settings),
            **extra,
        )

    @classmethod
    def for_provider(cls, provider: Any, **extra: Any) -> Self:
        """The process's client from its unit's resolved ``ProviderSettings`` (key, base URL,
        HTTP settings); :class:`MissingApiKeyError` without a key."""
        return cls(
            api_key=require_key(provider.api_key, env_var=cls.env_var, provider=cls.name),
            base_url=provider.base_url,
            http=provider.http,
            **extra,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self.client.close()

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request (override)."""
        raise NotImplementedError

    def parse_error(self, response: httpx.Response) -> ProviderError:
        """Map an error response to a :class:`ProviderError` (override for body shapes)."""
        body = json_body(response)
        message = response.reason_phrase or "error"
        if isinstance(body, dict):
            message = str(body.get("message") or body.get("error") or message)
        return error_for_status(response, provider=self.name, code=None, message=message)

    def url(self, path: str) -> str:
        """``path`` under the base URL; absolute URLs pass through."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def _build(
        self,
        client: httpx.Client | httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Request:
        merged = {**(self.auth_headers() if auth else {}), **(headers or {})}
        return client.build_request(
            method,
            self.url(path),
            json=json,
            params=params,
            headers=merged,
            timeout=self.http.httpx_timeout(),
        )

    def _check(
        self,
        response: httpx.Response,
        *,
        ok: Iterable[int],
        operation: Operation = "read",
        what: str = "",
        sent_at: datetime | None = None,
    ) -> httpx.Response:
        if response.status_code in ok:
            return response
        error = self.parse_error(response)
        if (
            operation == "submit"
            and response.status_code >= 500
            and response.status_code not in self.not_taken_statuses
        ):
            raise SubmissionOutcomeUnknown(
                provider=self.name,
                what=what,
                sent_at=sent_at or datetime.now(UTC),
                cause=f"HTTP {response.status_code}: {error}",
                status_code=response.status_code,
            )
        raise error

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (200, 201, 202),
        auth: bool = True,
        retry: RetryPolicy | None = None,
        follow_redirects: bool = False,
        operation: Operation = "read",
    ) -> httpx.Response:
        """Send a request with the retries of ``operation``; return the response or raise.

        The body is read before returning. Statuses in ``ok`` are successes; anything else is
        mapped by :meth:`parse_error`. See the module docstring for what a ``submit`` retries.
        """
        ok = tuple(ok)
        what = f"{method} {path}"

        def once() -> httpx.Response:
            request = self._build(
                self.client, method, path, json=json, params=params, headers=headers, auth=auth
            )
            sent_at = datetime.now(UTC)
            try:
                response = self.client.send(request, follow_redirects=follow_redirects)
                response.read()
            except httpx.TransportError as exc:
                if operation == "submit":
                    raise submission_transport_error(
                        exc, provider=self.name, what=what, sent_at=sent_at
                    ) from exc
                raise transport_error(exc, provider=self.name, what=what) from exc
            return self._check(response, ok=ok, operation=operation, what=what, sent_at=sent_at)

        return retry_call(once, policy=retry or self.http.policy(operation), sleep=self.sleep)

    def download(
        self,
        url: str,
        dest: Path,
        *,
        auth: bool = False,
        retry: RetryPolicy | None = None,
    ) -> int:
        """Stream ``url`` to ``dest`` (following redirects); return the byte count.

        403/404/410 raise :class:`ResultExpiredError` (poll again for a fresh URL); 5xx and
        transport failures are retried. ``auth`` sends the provider's auth header, which
        only URLs on the provider's own host need.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)

        def once() -> int:
            request = self._build(self.client, "GET", url, auth=auth)
            try:
                response = self.client.send(request, stream=True, follow_redirects=True)
                try:
                    if response.status_code in (403, 404, 410):
                        response.read()
                        raise ResultExpiredError(
                            f"{self.name}: result URL refused with HTTP "
                            f"{response.status_code} (expired or not yet available)",
                            provider=self.name,
                            status_code=response.status_code,
                        )
                    if response.status_code != 200:
                        response.read()
                        raise self.parse_error(response)
                    size = 0
                    with dest.open("wb") as out:
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                            size += len(chunk)
                    return size
                finally:
                    response.close()
            except httpx.TransportError as exc:
                raise transport_error(exc, provider=self.name, what="download") from exc

        return retry_call(once, policy=retry or self.http.policy("download"), sleep=self.sleep)

    async def arequest(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok: Iterable[int] = (200,),
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        """The async twin of :meth:`request` for reads, on a caller-owned ``AsyncClient``."""
        ok = tuple(ok)

        async def once() -> httpx.Response:
            request = self._build(client, method, path, json=json, params=params)
            try:
                response = await client.send(request)
                await response.aread()
            except httpx.TransportError as exc:
                raise transport_error(exc, provider=self.name, what=f"{method} {path}") from exc
            return self._check(response, ok=ok)

        return await aretry_call(once, policy=retry or self.http.policy("read"), sleep=self.asleep)
