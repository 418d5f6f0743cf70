"""What every remote provider client shares: errors, job status, retries, HTTP plumbing.

- :class:`ProviderError` and its subclasses say what went wrong in a way a caller can act on:
  :class:`PermanentError` (bad input, auth, credits: do not retry), :class:`TransientError`
  (5xx, timeouts, connection errors: try again later) and :class:`RateLimitedError` (429:
  try again after ``retry_after``). ``error.retryable`` is the one flag a poller needs.
- :class:`JobStatus` is the normalised answer to "how is job X doing?" from any async provider.
- :class:`RetryPolicy` with :func:`retry_call` / :func:`aretry_call` retries retryable errors
  with capped exponential backoff, honouring ``Retry-After``; the sleep is injectable.
- :class:`HttpProvider` sends requests through an injectable ``httpx.Client`` (or an
  ``httpx.AsyncClient`` for polling), turning transport failures and error statuses into the
  hierarchy above with the provider's own error message.
- :func:`apoll_many` / :func:`poll_many` poll many jobs concurrently over one
  ``httpx.AsyncClient`` using the ``httpx-aiohttp`` transport, time-boxed for sensors.

API keys are held as :class:`pydantic.SecretStr` and only revealed when a header is built, so
they never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, Self, TypeVar

import httpx
from pydantic import SecretStr

T = TypeVar("T")

JobState = Literal["queued", "running", "completed", "failed"]
JOB_STATES: tuple[JobState, ...] = ("queued", "running", "completed", "failed")

LOCAL_HINT = "use config.provider 'local' (or VIDPIPE_PROVIDERS=local)"


class ProviderError(Exception):
    """A provider call failed. ``str(error)`` is a message a user can act on.

    Attributes:
        provider: the provider name (``heygen``, ``elevenlabs``, ``veo3``, ``runway``,
            ``remotion``).
        status_code: the HTTP status, when the failure was an HTTP answer.
        code: the provider's own error code (``invalid_api_key``, ``RESOURCE_EXHAUSTED``...).
        retryable: whether trying again later may succeed.
        attempts: how many attempts were made before giving up (set by the retry helpers).
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.body = body
        self.attempts = 1


class PermanentError(ProviderError):
    """The request cannot succeed as sent (invalid input, unknown voice, no credits)."""


class AuthError(PermanentError):
    """The provider rejected the credentials (401/403, or an invalid key)."""


class MissingApiKeyError(AuthError):
    """The provider's API key is not configured; the message names the variable to set."""

    def __init__(self, env_var: str, *, provider: str = "") -> None:
        super().__init__(f"{env_var} is not set: set it or {LOCAL_HINT}", provider=provider)
        self.env_var = env_var


class MalformedResponseError(PermanentError):
    """The provider answered with a body this client cannot understand."""


class ResultExpiredError(PermanentError):
    """A result URL was refused (403/404/410), typically because its signature expired.

    Poll the job again for a freshly signed URL.
    """


class TransientError(ProviderError):
    """A failure that may go away: 5xx, 408, timeouts, connection errors."""

    retryable = True


class RateLimitedError(TransientError):
    """The provider asked us to slow down (429). ``retry_after`` is its hint, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


@dataclass(frozen=True)
class JobStatus:
    """The state of one provider job, normalised across providers.

    Attributes:
        state: ``queued`` (accepted, waiting, throttled), ``running``, ``completed`` or
            ``failed``.
        progress: 0..1 when the provider reports it, else ``None``.
        result_url: where the finished media can be downloaded (may expire; may need the
            provider's auth header, see each client's ``download``).
        error: the provider's reason when ``state == "failed"``.
        raw: the provider's response body, for metadata and debugging.
        cost_usd: the actual cost when the provider reports it (Runway credits, Remotion
            ``costs.accruedSoFar``), else ``None``.
    """

    state: JobState
    progress: float | None = None
    result_url: str | None = None
    error: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    cost_usd: float | None = None

    @property
    def done(self) -> bool:
        """True when the job reached a terminal state."""
        return self.state in ("completed", "failed")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter.

    The delay before attempt ``n + 1`` is ``min(max_delay, base_delay * 2 ** (n - 1))`` plus
    up to ``jitter`` of itself, unless the provider sent ``Retry-After``, which wins (capped
    at ``retry_after_cap``).
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    retry_after_cap: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return backoff + random.uniform(0, backoff * self.jitter)


NO_RETRY = RetryPolicy(max_attempts=1)


def retry_call(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds, retrying :class:`ProviderError` with ``retryable``.

    Non-retryable errors propagate at once; the last retryable one propagates once
    ``policy.max_attempts`` is used up. ``error.attempts`` tells how many calls were made.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            sleep(policy.delay(attempt, retry_after=getattr(exc, "retry_after", None)))
            attempt += 1


async def aretry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """The async twin of :func:`retry_call`."""
    attempt = 1
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            exc.attempts = attempt
            if not exc.retryable or attempt >= policy.max_attempts:
                raise
            await sleep(policy.delay(attempt, retry_after=getattr(exc, "retry_after", None)))
            attempt += 1


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def reveal(key: SecretStr | str | None) -> str | None:
    """The plain value of an API key (``None`` or empty stays ``None``)."""
    if key is None:
        return None
    value = key.get_secret_value() if isinstance(key, SecretStr) else key
    return value or None


def require_key(key: SecretStr | str | None, *, env_var: str, provider: str) -> SecretStr:
    """``key`` as a SecretStr, or :class:`MissingApiKeyError` naming ``env_var``."""
    value = reveal(key)
    if value is None:
        raise MissingApiKeyError(env_var, provider=provider)
    return SecretStr(value)


def json_body(response: httpx.Response) -> Any:
    """The response's JSON, or ``None`` when it is not JSON."""
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return None


def require_json(response: httpx.Response, *, provider: str, what: str) -> dict[str, Any]:
    """The response's JSON object, or :class:`MalformedResponseError` saying what was expected."""
    body = json_body(response)
    if not isinstance(body, dict):
        snippet = response.text[:200] if response.content else "<empty>"
        raise MalformedResponseError(
            f"{provider}: expected a JSON object from {what} "
            f"(HTTP {response.status_code}), got: {snippet!r}",
            provider=provider,
            status_code=response.status_code,
        )
    return body


def dig(body: Any, *path: str | int) -> Any:
    """``body[path[0]][path[1]]...`` or ``None`` when any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(body, list) or len(body) <= step:
                return None
        elif not isinstance(body, dict) or step not in body:
            return None
        body = body[step]
    return body


def error_for_status(
    response: httpx.Response,
    *,
    provider: str,
    code: str | None,
    message: str,
) -> ProviderError:
    """The :class:`ProviderError` subclass an HTTP error status maps to.

    401/403 -> :class:`AuthError`; 429 -> :class:`RateLimitedError` (with ``Retry-After``);
    408 and 5xx -> :class:`TransientError`; any other status -> :class:`PermanentError`.
    """
    status = response.status_code
    text = f"{provider}: HTTP {status}" + (f" {code}" if code else "") + f": {message}"
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": status,
        "code": code,
        "body": json_body(response),
    }
    if status == 429:
        return RateLimitedError(text, retry_after=parse_retry_after(response.headers), **kwargs)
    if status == 408 or status >= 500:
        return TransientError(text, **kwargs)
    if status in (401, 403):
        return AuthError(text, **kwargs)
    return PermanentError(text, **kwargs)


def transport_error(exc: httpx.TransportError, *, provider: str, what: str) -> TransientError:
    """A :class:`TransientError` for a timeout or a connection failure."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
    detail = str(exc) or type(exc).__name__
    return TransientError(f"{provider}: {what} {kind}: {detail}", provider=provider)


@dataclass(frozen=True)
class HttpSettings:
    """How a client talks HTTP: timeouts (seconds) and the retry policy."""

    timeout: float = 30.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()

    def httpx_timeout(self) -> httpx.Timeout:
        """The matching ``httpx.Timeout``."""
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)


class HttpProvider:
    """Base for HTTP provider clients: base URL, auth headers, retries and error mapping.

    Subclasses set :attr:`name`, :attr:`env_var`, :attr:`default_base_url` and the names of
    their key and base-URL settings, and implement :meth:`auth_headers` and
    :meth:`parse_error`. ``client`` is an ``httpx.Client`` the caller owns (tests point it at a
    fake server); when omitted one is created and closed by :meth:`close` or the context
    manager.
    """

    name: str = "provider"
    env_var: str = ""
    default_base_url: str = ""
    key_setting: str = ""
    base_url_setting: str = ""

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
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

    def _check(self, response: httpx.Response, *, ok: Iterable[int]) -> httpx.Response:
        if response.status_code not in ok:
            raise self.parse_error(response)
        return response

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
    ) -> httpx.Response:
        """Send a request with retries; return the response or raise a :class:`ProviderError`.

        The body is read before returning. Statuses in ``ok`` are successes; anything else is
        mapped by :meth:`parse_error`.
        """
        ok = tuple(ok)

        def once() -> httpx.Response:
            request = self._build(
                self.client, method, path, json=json, params=params, headers=headers, auth=auth
            )
            try:
                response = self.client.send(request, follow_redirects=follow_redirects)
                response.read()
            except httpx.TransportError as exc:
                raise transport_error(exc, provider=self.name, what=f"{method} {path}") from exc
            return self._check(response, ok=ok)

        return retry_call(once, policy=retry or self.http.retry, sleep=self.sleep)

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

        return retry_call(once, policy=retry or self.http.retry, sleep=self.sleep)

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
        """The async twin of :meth:`request`, on a caller-owned ``httpx.AsyncClient``."""
        ok = tuple(ok)

        async def once() -> httpx.Response:
            request = self._build(client, method, path, json=json, params=params)
            try:
                response = await client.send(request)
                await response.aread()
            except httpx.TransportError as exc:
                raise transport_error(exc, provider=self.name, what=f"{method} {path}") from exc
            return self._check(response, ok=ok)

        return await aretry_call(once, policy=retry or self.http.retry, sleep=self.asleep)


class AsyncJobProvider(Protocol):
    """What :func:`apoll_many` needs: a name and an async poll on a shared client."""

    name: str

    async def apoll(self, client: httpx.AsyncClient, job_id: str) -> JobStatus:
        """Poll one job."""
        ...


PollOutcome = JobStatus | ProviderError


def make_async_client(*, concurrency: int = 100, timeout: float = 30.0) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the aiohttp transport, sized for ``concurrency``.

    httpx's own async pool slows down sharply beyond ~50 connections; the aiohttp transport
    keeps the httpx API and stays at the latency floor with hundreds.
    """
    from httpx_aiohttp import AiohttpTransport

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits), timeout=httpx.Timeout(timeout)
    )


async def apoll_many(
    provider: AsyncJobProvider,
    job_ids: Iterable[str],
    *,
    concurrency: int = 50,
    time_budget: float | None = None,
    client: httpx.AsyncClient | None = None,
) -> dict[str, PollOutcome]:
    """Poll every job in ``job_ids`` at most ``concurrency`` at a time.

    Returns ``{job_id: JobStatus | ProviderError}``: an error is returned, not raised, so one
    bad job never hides the others. Jobs still unanswered after ``time_budget`` seconds are
    cancelled and reported as :class:`TransientError` (poll them on the next tick). ``client``
    defaults to :func:`make_async_client`, closed on return.
    """
    ids = list(dict.fromkeys(job_ids))
    results: dict[str, PollOutcome] = {}
    if not ids:
        return results
    owns = client is None
    aclient = client or make_async_client(concurrency=concurrency)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(job_id: str) -> None:
        async with semaphore:
            try:
                results[job_id] = await provider.apoll(aclient, job_id)
            except ProviderError as exc:
                results[job_id] = exc

    try:
        tasks = [asyncio.create_task(one(job_id)) for job_id in ids]
        _, pending = await asyncio.wait(tasks, timeout=time_budget)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    finally:
        if owns:
            await aclient.aclose()
    for job_id in ids:
        results.setdefault(
            job_id,
            TransientError(
                f"{provider.name}: job {job_id} not polled within the {time_budget} s budget",
                provider=provider.name,
            ),
        )
    return results


def poll_many(
    provider: AsyncJobProvider,
    job_ids: Iterable[str],
    *,
    concurrency: int = 50,
    time_budget: float | None = None,
) -> dict[str, PollOutcome]:
    """Synchronous entry point to :func:`apoll_many` for sensors (runs its own event loop)."""
    return asyncio.run(
        apoll_many(provider, job_ids, concurrency=concurrency, time_budget=time_budget)
    )


def http_settings_from(settings: Any) -> HttpSettings:
    """:class:`HttpSettings` from vidpipe's ``Settings`` (timeouts, attempts, Retry-After cap)."""
    return HttpSettings(
        timeout=settings.provider_timeout_seconds,
        connect_timeout=settings.provider_connect_timeout_seconds,
        retry=RetryPolicy(
            max_attempts=settings.provider_max_attempts,
            retry_after_cap=settings.provider_retry_after_cap_seconds,
        ),
    )


class PollingHttpProvider(HttpProvider):
    """Base for asynchronous HTTP providers: submit a job, poll it, fetch its result.

    Subclasses implement ``submit(...) -> job_id``, :meth:`status_path` and
    :meth:`parse_status` (a pure function of the status body); :meth:`poll`, :meth:`apoll`
    and :meth:`fetch_result` come from here.
    """

    result_needs_auth: bool = False

    def status_path(self, job_id: str) -> tuple[str, dict[str, str] | None]:
        """``(path, query params)`` of the status call for ``job_id``."""
        raise NotImplementedError

    def parse_status(self, body: dict[str, Any]) -> JobStatus:
        """The :class:`JobStatus` in a status response body."""
        raise NotImplementedError

    def poll(self, job_id: str) -> JobStatus:
        """The job's current status (retrying transient failures)."""
        path, params = self.status_path(job_id)
        response = self.request("GET", path, params=params, ok=(200,))
        return self.parse_status(require_json(response, provider=self.name, what="job status"))

    async def apoll(self, client: httpx.AsyncClient, job_id: str) -> JobStatus:
        """:meth:`poll` on a shared ``httpx.AsyncClient`` (see :func:`apoll_many`)."""
        path, params = self.status_path(job_id)
        response = await self.arequest(client, "GET", path, params=params)
        return self.parse_status(require_json(response, provider=self.name, what="job status"))

    def fetch_result(self, job_id: str, dest: Path, *, refetches: int = 2) -> JobStatus:
        """Download a completed job's media to ``dest``; return the status it came from.

        Polls for a freshly signed URL first; when the URL is refused as expired, polls again
        and retries up to ``refetches`` times. :class:`PermanentError` if the job is not
        completed or has no result URL.
        """
        for attempt in range(refetches + 1):
            status = self.poll(job_id)
            if status.state != "completed" or not status.result_url:
                raise PermanentError(
                    f"{self.name}: job {job_id} has no result to fetch (state {status.state}"
                    + (f": {status.error}" if status.error else "")
                    + ")",
                    provider=self.name,
                )
            try:
                self.download(status.result_url, dest, auth=self.result_needs_auth)
                return status
            except ResultExpiredError as exc:
                exc.attempts = attempt + 1
                if attempt >= refetches:
                    raise
                self.sleep(self.http.retry.delay(attempt + 1))
        raise AssertionError("unreachable")
