"""How an AI executor uses a provider: choosing it, getting its client, sending a paid
request at most once, and describing an asynchronous job it submitted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from vidpipe_dagster.assets.base import AsyncSubmission, ExecutionContext, ExecutorError, NodeSpec
from vidpipe_dagster.assets.provider_jobs import submission
from vidpipe_dagster.domain.node_types import canonical_type, effective_provider
from vidpipe_dagster.resources.providers.errors import (
    MissingApiKeyError,
    ProviderError,
    SubmissionOutcomeUnknown,
)
from vidpipe_dagster.resources.providers.registry import providers_for, require_unit
from vidpipe_dagster.settings import Settings

LOCAL_PROVIDER = "local"

T = TypeVar("T")


def select_provider(node: NodeSpec, settings: Settings) -> str:
    """The provider that runs an AI node (``node_types.effective_provider``).

    ``config.provider`` names it (default ``local``); ``VIDPIPE_PROVIDERS=local`` forces the
    local renderer for every node. A provider that cannot run this node type raises
    :class:`ExecutorError`.
    """
    provider = effective_provider(node.type, node.config, force_local=settings.force_local)
    allowed = providers_for(canonical_type(node.type)) or frozenset({LOCAL_PROVIDER})
    if provider not in allowed:
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}) asks for provider '{provider}', which is "
            f"not available here; set config.provider to one of {', '.join(sorted(allowed))}, "
            "or set VIDPIPE_PROVIDERS=local to render every AI node locally."
        )
    return provider


def provider_client(node: NodeSpec, provider: str, *, ctx: ExecutionContext) -> Any:
    """The process's client of ``provider``; a missing key becomes an :class:`ExecutorError`.

    The message names the environment variable to set (and the local alternative).
    """
    try:
        return ctx.clients().client(provider)
    except MissingApiKeyError as exc:
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}): provider '{provider}' cannot run: {exc}"
        ) from exc


def send_paid(
    node: NodeSpec,
    ctx: ExecutionContext,
    *,
    provider: str,
    send: Callable[[Any], T],
) -> T:
    """Send one paid request of ``provider`` for this execution, at most once.

    ``send(client)`` makes the request. The submission is recorded (``metadata.submission``,
    state ``sending``) before it goes out. For an asynchronous provider ``send`` returns the
    job id, and a lost answer is looked up by this execution's process_uuid where the
    provider keeps it. A lost answer that cannot be resolved raises an
    :class:`ExecutorError` caused by ``SubmissionOutcomeUnknown`` ("submission outcome
    unknown", naming the provider, the time and where to check); other refusals go through
    :func:`provider_failure`.
    """
    client = provider_client(node, provider, ctx=ctx)
    unit = require_unit(provider)
    pending = submission.sending(unit, reference=ctx.process_uuid)
    ctx.record(pending.as_metadata())

    def send_job() -> str:
        job_id = send(client)
        if not isinstance(job_id, str):
            raise TypeError(f"{provider} is asynchronous: its submission must return a job id")
        return job_id

    try:
        if unit.mode == "async":
            result: Any = submission.submit_once(
                unit, client, reference=ctx.process_uuid, send=send_job
            )
        else:
            result = submission.send_once(unit, lambda: send(client))
    except SubmissionOutcomeUnknown as exc:
        ctx.record(submission.unknown(pending, exc).as_metadata())
        raise ExecutorError(f"Node {node.describe()} ({node.type}): {exc}") from exc
    except ProviderError as exc:
        ctx.record(submission.rejected(pending, exc).as_metadata())
        raise provider_failure(node, exc) from exc
    job_id = result if isinstance(result, str) else None
    ctx.record(submission.accepted(pending, job_id=job_id).as_metadata())
    return result


def provider_failure(node: NodeSpec, error: ProviderError) -> Exception:
    """What a provider's refusal becomes: transient errors stay :class:`ProviderError` (the
    run retries them), permanent ones become an :class:`ExecutorError` naming the node."""
    if error.retryable:
        return error
    return ExecutorError(f"Node {node.describe()} ({node.type}): {error}")


def submitted(
    provider: str,
    job_id: str,
    *,
    estimated_cost: float,
    extra: Mapping[str, Any] | None = None,
) -> AsyncSubmission:
    """The :class:`AsyncSubmission` of a job just accepted by ``provider``."""
    return AsyncSubmission(
        provider=provider,
        job_id=job_id,
        metadata={
            "stage": "submitted",
            "submitted_at": datetime.now(UTC).isoformat(),
            "poll_attempts": 0,
            "estimated_cost": round(estimated_cost, 6),
            **(extra or {}),
        },
    )


def webhook_url(settings: Settings, provider: str) -> str | None:
    """Where ``provider`` should call back, when ``VIDPIPE_WEBHOOK_BASE_URL`` is set."""
    base = (settings.webhook_base_url or "").rstrip("/")
    return f"{base}/v1/webhooks/{provider}" if base else None
