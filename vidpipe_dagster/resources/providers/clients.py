"""Provider clients built once per process, reused by every call, closed at shutdown.

:class:`ProviderClients` holds one client per provider for one set of settings: the
executors, the polling sensor and the webhooks ask it for ``client(name)`` instead of
building one per call (an HTTP client with its connection pool; Remotion's boto3 Lambda and
S3 clients cost ~11 ms each to build). :func:`shared_clients` gives the process-wide instance
for a settings value (the Dagster resource and the API app use it); every instance is closed
when the process exits, or by :meth:`ProviderClients.close`.

:func:`fetch_job_result` copies a completed job's media to a local file through the client.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from vidpipe_dagster.resources.providers.registry import require_unit
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.providers.unit import ProviderSettings, ProviderUnit

log = logging.getLogger(__name__)

MAX_SHARED = 16
"""Distinct settings values kept at once (one in production; tests make many)."""


class ProviderClients:
    """One lazily built client per provider, for one ``Settings`` value. Thread-safe."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def unit(self, name: str) -> ProviderUnit:
        """The provider's unit (``ValueError`` for an unknown name)."""
        return require_unit(name)

    def settings_of(self, name: str) -> ProviderSettings:
        """The provider's resolved settings."""
        return self.unit(name).settings(self.settings)

    def client(self, name: str) -> Any:
        """The provider's client, built on first use and kept.

        Raises what building raises (``MissingApiKeyError`` naming the variable to set); a
        failed build is not remembered, so setting the key later works.
        """
        client = self._clients.get(name)
        if client is not None:
            return client
        unit = self.unit(name)
        if unit.build is None:
            raise ValueError(f"provider {name!r} has no client")
        with self._lock:
            client = self._clients.get(name)
            if client is None:
                client = unit.build(unit.settings(self.settings), self.settings)
                self._clients[name] = client
        return client

    def close(self) -> None:
        """Close every client built so far."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            close = getattr(client, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:  # noqa: BLE001 - shutdown must go on
                    log.warning("closing %r failed", client, exc_info=True)


def _fingerprint(settings: Any) -> str:
    dump = settings.model_dump() if hasattr(settings, "model_dump") else vars(settings)

    def plain(value: Any) -> Any:
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)

    encoded = json.dumps(dump, default=plain, sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


_shared: OrderedDict[str, ProviderClients] = OrderedDict()
_shared_lock = threading.Lock()


def shared_clients(settings: Any) -> ProviderClients:
    """The process-wide :class:`ProviderClients` for ``settings`` (equal values share one)."""
    key = _fingerprint(settings)
    with _shared_lock:
        clients = _shared.get(key)
        if clients is None:
            clients = ProviderClients(settings)
            _shared[key] = clients
            while len(_shared) > MAX_SHARED:
                _, evicted = _shared.popitem(last=False)
                evicted.close()
        else:
            _shared.move_to_end(key)
        return clients


@atexit.register
def close_shared() -> None:
    """Close every shared client (at process exit, or a server's shutdown)."""
    with _shared_lock:
        every = list(_shared.values())
        _shared.clear()
    for clients in every:
        clients.close()


def fetch_job_result(
    client: Any, job_id: str, dest: Path, *, status: JobStatus | None = None
) -> JobStatus:
    """Copy a completed job's media to ``dest``; return the status it was fetched from.

    ``status`` (from a poll or a webhook) is tried first; an expired or missing URL falls
    back to asking the provider again.
    """
    return client.fetch_completed(job_id, dest, status=status)
