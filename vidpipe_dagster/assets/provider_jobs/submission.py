"""Exactly one provider job per execution: a paid submission is never sent twice blindly.

Reads and polls retry freely; a submission (a request that creates paid work) is retried only
when it cannot have reached the provider (:mod:`~vidpipe_dagster.resources.providers.http`).
When its answer is lost, the outcome is unknown:

- a provider that keeps our reference on its jobs (``unit.finds_submissions``: HeyGen lists
  videos by a title holding ``ref <process_uuid>``, and echoes the process_uuid as
  ``callback_id``) is asked for the job, which the execution then waits on
  (:func:`submit_once`);
- otherwise the node fails with "submission outcome unknown", naming the provider, the time
  and where to check, and the node's ``metadata.submission`` records it.

``metadata.submission`` (:class:`Submission`) follows every paid submission: ``sending``
before the request goes out, then ``accepted`` (with the job id), ``rejected`` (the provider
answered that it did not take it) or ``unknown`` (the answer was lost); a process that dies
in between leaves ``sending``, which counts as unknown. A later execution of the node (a
step retry, a scheduled retry, automation, a click) consults it first
(:func:`resume_previous`): an earlier ``sending`` / ``unknown`` submission is looked up where
the provider allows it (found: the new execution adopts that job; not found: it was never
taken, submit); elsewhere only an explicit request (the API) may submit again, and every
automatic re-execution is refused with the same message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from vidpipe_dagster.resources.providers.clients import ProviderClients
from vidpipe_dagster.resources.providers.errors import ProviderError, SubmissionOutcomeUnknown
from vidpipe_dagster.resources.providers.unit import ProviderUnit

T = TypeVar("T")

SUBMISSION_KEY = "submission"
"""The node metadata key holding the last paid submission (:class:`Submission`)."""

State = Literal["sending", "accepted", "rejected", "unknown"]


@dataclass(frozen=True)
class Submission:
    """The last paid submission of a node, as ``metadata.submission`` records it.

    ``reference`` is the process_uuid of the execution that sent it (what a provider that
    keeps our reference can be asked about); ``at`` when it went out (ISO 8601, UTC).
    """

    state: State
    provider: str
    reference: str
    at: str
    job_id: str | None = None
    findable: bool = False
    error: str | None = None

    @property
    def unresolved(self) -> bool:
        """True when nobody knows whether the provider took it."""
        return self.state in ("sending", "unknown")

    def as_metadata(self) -> dict[str, Any]:
        """``{"submission": {...}}`` for a lifecycle update."""
        return {SUBMISSION_KEY: {k: v for k, v in asdict(self).items() if v is not None}}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> Submission | None:
        """The submission recorded in node ``metadata``, else ``None``."""
        value = (metadata or {}).get(SUBMISSION_KEY)
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                state=value["state"],
                provider=str(value["provider"]),
                reference=str(value["reference"]),
                at=str(value["at"]),
                job_id=value.get("job_id"),
                findable=bool(value.get("findable")),
                error=value.get("error"),
            )
        except KeyError:
            return None


def sending(unit: ProviderUnit, *, reference: str) -> Submission:
    """The record written just before a submission goes out."""
    return Submission(
        state="sending",
        provider=unit.name,
        reference=reference,
        at=datetime.now(UTC).isoformat(),
        findable=unit.finds_submissions,
    )


def accepted(previous: Submission, *, job_id: str | None) -> Submission:
    """``previous`` once the provider answered with ``job_id`` (``None`` for sync work)."""
    return Submission(
        state="accepted",
        provider=previous.provider,
        reference=previous.reference,
        at=previous.at,
        job_id=job_id,
        findable=previous.findable,
    )


def rejected(previous: Submission, error: BaseException) -> Submission:
    """``previous`` once the provider answered that it did not take it (a 4xx, a 429...)."""
    return Submission(
        state="rejected",
        provider=previous.provider,
        reference=previous.reference,
        at=previous.at,
        findable=previous.findable,
        error=str(error)[:500],
    )


def unknown(previous: Submission, error: SubmissionOutcomeUnknown) -> Submission:
    """``previous`` once its answer was lost."""
    return Submission(
        state="unknown",
        provider=previous.provider,
        reference=previous.reference,
        at=error.sent_at.isoformat(),
        findable=previous.findable,
        error=str(error),
    )


def send_once(unit: ProviderUnit, send: Callable[[], T]) -> T:
    """``send()`` once; a lost answer raises :class:`SubmissionOutcomeUnknown` naming where
    to check (``unit.check_hint``)."""
    try:
        return send()
    except SubmissionOutcomeUnknown as error:
        raise error.with_check(unit.check_hint) from error.__cause__


def submit_once(unit: ProviderUnit, client: Any, *, reference: str, send: Callable[[], str]) -> str:
    """Submit with ``send()`` (returning the job id) at most once.

    When the answer is lost and the provider keeps our ``reference``, the job is looked up
    and its id returned; when it cannot be found (or the provider keeps no reference),
    :class:`SubmissionOutcomeUnknown` propagates.
    """
    try:
        return send_once(unit, send)
    except SubmissionOutcomeUnknown as lost:
        if unit.finds_submissions:
            try:
                found = client.find_submission(reference)
            except ProviderError:
                raise lost from None
            if found:
                return found
        raise


@dataclass(frozen=True)
class Resume:
    """What to do about a node's earlier submission before submitting again.

    ``action`` is ``submit`` (nothing pending, or it was never taken), ``adopt`` (wait on
    ``job_id``, the earlier execution's job) or ``refuse`` (``message`` says why and what to
    check).
    """

    action: Literal["submit", "adopt", "refuse"]
    job_id: str | None = None
    message: str = ""


def resume_previous(
    previous: Submission | None,
    *,
    provider: str,
    providers: ProviderClients,
    explicit: bool,
) -> Resume:
    """Decide whether a new execution on ``provider`` may submit (see the module docstring).

    ``explicit`` is true for a run someone asked for (the API's execute, not a step retry,
    a scheduled retry, a sensor or automation).
    """
    if previous is None or not previous.unresolved or previous.provider != provider:
        return Resume("submit")
    unit = providers.unit(provider)
    if unit.finds_submissions:
        found = providers.client(provider).find_submission(previous.reference)
        return Resume("adopt", job_id=found) if found else Resume("submit")
    if explicit:
        return Resume("submit")
    when = previous.at.replace("T", " ")[:19]
    return Resume(
        "refuse",
        message=(
            f"{provider}: submission outcome unknown: an earlier execution's request sent at "
            f"{when} UTC got no answer, so it is not sent again automatically; check "
            f"{unit.check_hint or 'the provider account'} for that job, then run the node again"
        ),
    )


EXPLICIT_SOURCES = frozenset({"api", "provider-slot"})
"""Run sources someone asked for: the API's execute, and the run the provider sensor starts
for a node that waited for a provider slot after such a request."""


def is_explicit(tags: Mapping[str, str], *, retry_number: int) -> bool:
    """Whether a run was asked for by someone (see :data:`EXPLICIT_SOURCES`), first attempt."""
    if retry_number > 0 or "dagster/parent_run_id" in tags:
        return False
    return tags.get("vidpipe/source") in EXPLICIT_SOURCES
