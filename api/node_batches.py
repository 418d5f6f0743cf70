"""``POST .../nodes`` in groups: the creations waiting on one pipeline share a transaction.

Every node creation locks its pipeline's row, so creations in one pipeline run one after
another, each paying the lock, the progress recount, the events write and the commit. Here
the requests of one process that arrive while a creation of the same pipeline is under way
wait in a queue, and the next transaction creates all of them (up to :data:`MAX_BATCH`):
one lock, one recount, one events write (a ``node`` event per node and one ``pipeline``
event with the final progress), one commit, one reload request. A request alone is a batch
of one, exactly the transaction it used to be.

Each node is still validated on its own: a refused one gets its own error and the others
are created. Any other failure of the transaction (an outage, an integrity error) is
answered to every request of the batch; a lock conflict reruns the whole batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.contract import Contract
from vidpipe_dagster.db.conflicts import is_unavailable, retry_conflicts
from vidpipe_dagster.domain import nodes as commands
from vidpipe_dagster.domain.errors import VidpipeError
from vidpipe_dagster.domain.nodes import pipeline_node_uuids
from vidpipe_dagster.domain.pipelines import get_pipeline, parse_uuid
from vidpipe_dagster.domain.progress import refresh_pipeline_metadata

MAX_BATCH = 64
"""Creations one transaction takes at most."""


@dataclass
class _Pending:
    fields: dict[str, Any]
    future: asyncio.Future = field(repr=False)


class NodeBatches:
    """The app's queues of node creations, one per pipeline with a creation under way."""

    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        contract: Contract,
        notify_change: Callable[[str], None],
    ) -> None:
        self.sessions = sessions
        self.contract = contract
        self.notify_change = notify_change
        self._queues: dict[str, list[_Pending]] = {}
        self._tasks: set[asyncio.Task] = set()
        self.batches = 0
        """Transactions run so far (for tests and diagnostics)."""

    async def create(self, pipeline_uuid: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create a node in the pipeline and return its JSON; domain errors are raised."""
        key = str(parse_uuid(pipeline_uuid, what="Pipeline"))
        pending = _Pending(fields, asyncio.get_running_loop().create_future())
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(pending)
        else:
            self._queues[key] = [pending]
            task = asyncio.create_task(self._drain(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await pending.future

    async def _drain(self, key: str) -> None:
        """Run batches of ``key``'s queue until it is empty (a task of its own, so a client
        that goes away does not cancel the others' creations)."""
        queue = self._queues[key]
        try:
            while queue:
                batch = queue[:MAX_BATCH]
                del queue[: len(batch)]
                try:
                    outcomes = await run_in_threadpool(self._write, key, batch)
                except Exception as error:
                    outcomes = [error] * len(batch)
                for pending, outcome in zip(batch, outcomes, strict=True):
                    if pending.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        pending.future.set_exception(outcome)
                    else:
                        pending.future.set_result(outcome)
        finally:
            del self._queues[key]
            for pending in queue:
                if not pending.future.done():
                    pending.future.set_exception(RuntimeError("node creation abandoned"))

    def _write(self, key: str, batch: list[_Pending]) -> list[dict[str, Any] | Exception]:
        """One transaction creating ``batch``'s nodes; the answer or the error of each.

        When the database refuses the batch (not an outage), each creation is run alone so
        only the one at fault gets the error."""
        try:
            outcomes = self._transaction(key, batch)
        except SQLAlchemyError as error:
            if len(batch) == 1 or is_unavailable(error):
                raise
            outcomes = [self._alone(key, pending) for pending in batch]
        if any(not isinstance(outcome, Exception) for outcome in outcomes):
            self.notify_change(key)
        return outcomes

    def _alone(self, key: str, pending: _Pending) -> dict[str, Any] | Exception:
        try:
            return self._transaction(key, [pending])[0]
        except Exception as error:
            return error

    @retry_conflicts
    def _transaction(self, key: str, batch: list[_Pending]) -> list[dict[str, Any] | Exception]:
        self.batches += 1
        with self.sessions() as session:
            pipeline = get_pipeline(session, key, lock=True)
            existing = commands.referenced_uuids(
                session, pipeline, [pending.fields.get("inputs") for pending in batch]
            )
            outcomes: list[Any] = []
            with session.no_autoflush:
                for pending in batch:
                    try:
                        node = commands.create_node(
                            session,
                            pipeline,
                            contract=self.contract.name,
                            batch=existing,
                            **pending.fields,
                        )
                    except VidpipeError as error:
                        outcomes.append(error)
                    else:
                        outcomes.append(node)
            created = [node for node in outcomes if not isinstance(node, Exception)]
            if not created:
                session.rollback()
                return outcomes
            session.flush()
            refresh_pipeline_metadata(session, pipeline.id)
            known = pipeline_node_uuids(session, pipeline.id)
            answers = [
                outcome
                if isinstance(outcome, Exception)
                else {"node": self.contract.node_among(outcome, known)}
                for outcome in outcomes
            ]
            session.commit()
        return answers
