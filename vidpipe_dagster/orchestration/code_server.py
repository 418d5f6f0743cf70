"""Serve each snapshot of the loaded definitions once per code server.

Dagster's gRPC code server rebuilds and re-serializes the repository snapshot on every
``ExternalRepository`` call and the asset job's snapshot on every ``ExternalJob`` call. The
webserver and the daemon each make both calls whenever a location loads or reloads, so at
1,000 pipelines (20,000 assets) the code server built the same 113 MB snapshot twice, about
11 s of CPU each time, before the UI could show the location.

The definitions a code server holds never change in place (a reload starts a new server
process), so the answer to either call is a pure function of the loaded repository.
``install()`` wraps the two methods of ``DagsterApiServer`` with a memo keyed by the
repository definition object: the first caller computes, concurrent callers wait for it,
later callers get the stored string. Error answers are not stored. Dagster 1.13 offers no
supported way to do this (its server serializes on every call, ``dagster/_grpc/server.py``),
so the wrap touches private methods, and is therefore applied only to the Dagster version it
was written against (``TESTED_DAGSTER``, checked by ``tests/dagster/test_code_server.py``; on
any other version it does nothing), only when the location loads (``prepare_process``, called
by ``defs``, never at import) and only while ``VIDPIPE_CODE_SERVER_MEMO`` is on (the default).

``tune_gc()`` raises the cyclic garbage collector's thresholds in processes that hold the
compiled definitions (code servers and run workers): with CPython's defaults (700, 10, 10)
every few hundred allocations rescan the young objects and every hundred thousand or so the
whole heap, which at 20,000 assets cost a third of compiling, resolving and snapshotting
the location. Reference counting still frees everything acyclic at once; only cycles wait
longer. Thresholds someone already changed are left alone.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

TESTED_DAGSTER = "1.13.27"
_MARK = "_vidpipe_memoized"
PYTHON_GC_DEFAULTS = (700, 10, 10)
GC_THRESHOLDS = (100_000, 50, 100)


def prepare_process(*, memo: bool) -> None:
    """What a process loading the compiled location does first: raise the GC thresholds and,
    with ``memo``, serve snapshots once (see the module docstring)."""
    tune_gc()
    if memo:
        install()


def tune_gc() -> bool:
    """Raise the GC thresholds to ``GC_THRESHOLDS`` unless they were changed; True if set."""
    if gc.get_threshold() != PYTHON_GC_DEFAULTS:
        return False
    gc.set_threshold(*GC_THRESHOLDS)
    return True


class SnapshotMemo:
    """Answers computed once per (repository definition, request kind); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple, threading.Lock] = {}
        self._values: dict[tuple, tuple[Any, Any]] = {}
        self.computed = 0

    def get(self, repo: Any, kind: tuple, compute, keep) -> Any:
        """The stored answer for ``repo`` and ``kind``, else ``compute()`` (stored if ``keep``)."""
        key = (id(repo), *kind)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            hit = self._values.get(key)
            if hit is not None and hit[0] is repo:
                return hit[1]
            value = compute()
            self.computed += 1
            if keep(value):
                # holding ``repo`` keeps its id from being reused by a later definition
                self._values[key] = (repo, value)
            return value


MEMO = SnapshotMemo()


def _repo_of(server: Any, serialized_origin: str) -> Any | None:
    from dagster._core.remote_origin import RemoteRepositoryOrigin
    from dagster._serdes import deserialize_value

    try:
        origin = deserialize_value(serialized_origin, RemoteRepositoryOrigin)
        return server._get_repo_for_origin(origin)
    except Exception:  # the original method reports the error in its own shape
        return None


def _is_repository_snap(serialized: str) -> bool:
    return serialized.startswith('{"__class__": "ExternalRepositoryData"')


def on_tested_dagster(refused: str) -> bool:
    """Whether the installed Dagster is ``TESTED_DAGSTER``, the version a wrap of its private
    server methods was written against; if not, log ``refused`` (what is left undone)."""
    import dagster

    if dagster.__version__ == TESTED_DAGSTER:
        return True
    log.info("%s: written for dagster %s, found %s", refused, TESTED_DAGSTER, dagster.__version__)
    return False


def install() -> bool:
    """Memoize the code server's snapshot answers; True when the wrap is in place."""
    from dagster._grpc.server import DagsterApiServer

    if getattr(DagsterApiServer, _MARK, False):
        return True
    if not on_tested_dagster("Code server snapshot memo not installed"):
        return False
    repository_data = DagsterApiServer._get_serialized_external_repository_data
    external_job = DagsterApiServer.ExternalJob

    @functools.wraps(repository_data)
    def memo_repository_data(self, request):
        repo = _repo_of(self, request.serialized_repository_python_origin)
        if repo is None:
            return repository_data(self, request)
        return MEMO.get(
            repo,
            ("repository", bool(request.defer_snapshots)),
            lambda: repository_data(self, request),
            _is_repository_snap,
        )

    @functools.wraps(external_job)
    def memo_external_job(self, request, context):
        repo = _repo_of(self, request.serialized_repository_origin)
        if repo is None:
            return external_job(self, request, context)
        return MEMO.get(
            repo,
            ("job", request.job_name),
            lambda: external_job(self, request, context),
            lambda reply: bool(reply.serialized_job_data),
        )

    # The memo replaces these two methods of Dagster's server on purpose (module docstring).
    DagsterApiServer._get_serialized_external_repository_data = memo_repository_data  # type: ignore[method-assign]
    DagsterApiServer.ExternalJob = memo_external_job  # type: ignore[method-assign, assignment]
    setattr(DagsterApiServer, _MARK, True)
    return True
