"""The declaration of one provider: everything vidpipe needs to know about it, in one value.

Each provider module ends with ``UNIT = ProviderUnit(...)``; :mod:`.registry` collects them.
A unit says:

- what it is: ``name`` (``config.provider``), ``title`` (for messages), ``mode`` (``async``:
  submit now, finish later; ``sync``: the answer is the media; ``local``), whether it is
  ``paid`` and which ``node_types`` it renders;
- its settings (:meth:`ProviderUnit.settings`: key, base URL, max wait, in-flight limit,
  timeouts and the retry policy per operation), read from vidpipe's ``Settings``;
- how to build its client (``build``: called once per process by :mod:`.clients`);
- its price function and default rates, its limits, the media it returns;
- its webhook (:class:`Webhook`: the signature check and the parser), if it calls back;
- whether it keeps a reference of ours on its jobs (``finds_submissions``: the client has
  ``find_submission(reference) -> job_id | None``), and where a person checks for a job whose
  submission outcome is unknown (``check_hint``).

Nothing here does I/O; building a unit is free.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from vidpipe_dagster.resources.providers.http_settings import HttpSettings, http_settings_from
from vidpipe_dagster.resources.providers.keys import reveal
from vidpipe_dagster.resources.providers.status import JobStatus

Mode = Literal["async", "sync", "local"]

DEFAULT_MAX_WAIT_SECONDS = 900.0


@dataclass(frozen=True)
class ProviderSettings:
    """One provider's operating settings, resolved from vidpipe's ``Settings``."""

    name: str
    api_key: SecretStr | None
    base_url: str | None
    max_wait_seconds: float
    in_flight_limit: int
    http: HttpSettings
    webhook_secret: SecretStr | None = None

    def __repr__(self) -> str:
        return (
            f"ProviderSettings(name={self.name!r}, base_url={self.base_url!r}, "
            f"max_wait_seconds={self.max_wait_seconds}, in_flight_limit={self.in_flight_limit})"
        )


@dataclass(frozen=True)
class WebhookEvent:
    """What a verified callback says: the job (by its id, or by our reference) and how it
    ended. ``status`` is ``None`` for events that finish nothing (ignored)."""

    job_id: str | None
    status: JobStatus | None
    reference: str | None = None


@dataclass(frozen=True)
class Webhook:
    """How a provider calls back: the signature check and the body parser.

    ``verify(secret, body, headers)`` is true when the signature header matches an HMAC of
    the raw ``body``; ``parse(event, headers)`` turns the JSON body into a
    :class:`WebhookEvent`. ``secret_env`` names the variable holding the shared secret.
    """

    secret_env: str
    verify: Callable[[str, bytes, Mapping[str, str]], bool]
    parse: Callable[[dict[str, Any], Mapping[str, str]], WebhookEvent]


def hmac_hex_check(
    *, header: str, digest: Callable[..., Any], prefix: str = "", alternatives: tuple[str, ...] = ()
) -> Callable[[str, bytes, Mapping[str, str]], bool]:
    """A ``verify`` for signatures sent as hex HMACs of the raw body in ``header``."""

    def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
        sent = headers.get(header) or next(
            (headers[name] for name in alternatives if headers.get(name)), ""
        )
        sent = sent.strip().lower().removeprefix(prefix)
        expected = hmac.new(secret.encode(), body, digest).hexdigest()
        return bool(sent) and hmac.compare_digest(expected, sent)

    return verify


def hmac_sha256_hex(header: str, *alternatives: str) -> Callable[..., bool]:
    """:func:`hmac_hex_check` with SHA-256."""
    return hmac_hex_check(header=header, digest=hashlib.sha256, alternatives=alternatives)


@dataclass(frozen=True)
class ProviderUnit:
    """One provider, declared once (see the module docstring)."""

    name: str
    title: str
    mode: Mode
    paid: bool
    node_types: frozenset[str]
    build: Callable[[ProviderSettings, Any], Any] | None = None
    price: Callable[..., Any] | None = None
    rates: Mapping[str, Any] = field(default_factory=dict)
    default_rate_key: str = ""
    key_env: str | None = None
    key_setting: str | None = None
    base_url_setting: str | None = None
    base_url_env: str | None = None
    default_base_url: str | None = None
    max_wait_setting: str | None = None
    default_in_flight_limit: int = 5
    webhook: Webhook | None = None
    webhook_secret_setting: str | None = None
    finds_submissions: bool = False
    check_hint: str = ""
    media_extension: str = "mp4"
    media_type: str = "video/mp4"

    def settings(self, settings: Any) -> ProviderSettings:
        """This provider's settings from vidpipe's ``Settings``.

        A provider without fields of its own in ``Settings`` (``key_setting`` and friends
        unset) reads ``key_env``, ``base_url_env`` and its webhook's ``secret_env`` from the
        environment when asked, so adding one needs no change outside its module.
        """
        key = (
            getattr(settings, self.key_setting)
            if self.key_setting
            else os.environ.get(self.key_env or "")
            if self.mode != "local"
            else None
        )
        limits = getattr(settings, "provider_limits", None) or {}
        configured = limits.get(self.name)
        max_wait = getattr(settings, self.max_wait_setting) if self.max_wait_setting else None
        secret = (
            getattr(settings, self.webhook_secret_setting, None)
            if self.webhook_secret_setting
            else os.environ.get(self.webhook.secret_env)
            if self.webhook
            else None
        )
        base_url = (
            getattr(settings, self.base_url_setting)
            if self.base_url_setting
            else os.environ.get(self.base_url_env or "") or self.default_base_url
        )
        return ProviderSettings(
            name=self.name,
            api_key=SecretStr(plain_key) if (plain_key := reveal(key)) else None,
            base_url=base_url,
            max_wait_seconds=float(max_wait) if max_wait else DEFAULT_MAX_WAIT_SECONDS,
            in_flight_limit=(
                configured
                if isinstance(configured, int) and configured > 0
                else self.default_in_flight_limit
            ),
            http=http_settings_from(settings),
            webhook_secret=SecretStr(plain_secret) if (plain_secret := reveal(secret)) else None,
        )
