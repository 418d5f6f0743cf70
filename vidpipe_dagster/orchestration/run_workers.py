"""Run workers forked from a warm process instead of started from nothing.

Dagster's code server starts each run's worker with ``multiprocessing``'s ``spawn``: a new
interpreter that imports Dagster, vidpipe and their libraries before it can load the
definitions and begin the run, about 1.2 s of the 1.6 s between a run leaving the queue
and its worker starting, on the development machine. With ``forkserver`` the imports are done
once, in a server process started beside the code server when the webserver or daemon first
lists its repositories; each run worker is then a fork of it and begins with everything
imported. What a worker runs is unchanged: it still unpickles its job's pointer, loads the
definitions from the database (imports load nothing: ``defs`` is lazy) and executes as
before, with the same queue, termination event and exit handling (the code server keeps
the process object either way).

Like :mod:`~vidpipe_dagster.orchestration.code_server`, this sets an attribute Dagster
keeps private (``DagsterApiServer._mp_ctx``, a fixed ``spawn`` context in 1.13), so it is
applied only to the Dagster version it was written against (``TESTED_DAGSTER``) and only
while ``VIDPIPE_RUN_WORKER_FORKSERVER`` is on (the default). The fork server is started
only by a code server (no run worker lists repositories), costs one process holding the
imports (about 100 MB) per code server, and exits with it.
"""

from __future__ import annotations

import functools
import multiprocessing
import multiprocessing.forkserver
import threading
from multiprocessing.context import BaseContext
from typing import Any

from vidpipe_dagster.orchestration.code_server import on_tested_dagster

PRELOAD = [
    "dagster",
    "dagster._grpc.impl",
    "dagster._core.execution.api",
    "vidpipe_dagster.definitions",
]
"""Imported once by the fork server: Dagster's run execution and vidpipe's definitions
module (whose import reads nothing; the definitions are built by each worker)."""

_MARK = "_vidpipe_forkserver"


@functools.cache
def context() -> BaseContext:
    """The ``forkserver`` context whose server has imported :data:`PRELOAD`."""
    forked = multiprocessing.get_context("forkserver")
    forked.set_forkserver_preload(PRELOAD)
    return forked


@functools.cache
def warm() -> threading.Thread:
    """Start the fork server in the background (once per process)."""
    context()
    thread = threading.Thread(
        target=multiprocessing.forkserver.ensure_running, name="vidpipe-forkserver", daemon=True
    )
    thread.start()
    return thread


def install() -> bool:
    """Start run workers from the fork server; True when the change is in place."""
    from dagster._grpc.server import DagsterApiServer

    if getattr(DagsterApiServer, _MARK, False):
        return True
    if not on_tested_dagster("Run workers are spawned as Dagster does"):
        return False
    start_run = DagsterApiServer.StartRun
    list_repositories = DagsterApiServer.ListRepositories

    @functools.wraps(start_run)
    def start_run_forked(self: Any, request: Any, context_: Any) -> Any:
        self._mp_ctx = context()
        return start_run(self, request, context_)

    @functools.wraps(list_repositories)
    def list_repositories_warming(self: Any, request: Any, context_: Any) -> Any:
        warm()
        return list_repositories(self, request, context_)

    DagsterApiServer.StartRun = start_run_forked  # type: ignore[method-assign, assignment]
    DagsterApiServer.ListRepositories = list_repositories_warming  # type: ignore[method-assign, assignment]
    setattr(DagsterApiServer, _MARK, True)
    return True
