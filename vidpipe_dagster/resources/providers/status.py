"""The normalised answer to "how is job X doing?" from any asynchronous provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

JobState = Literal["queued", "running", "completed", "failed"]


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
