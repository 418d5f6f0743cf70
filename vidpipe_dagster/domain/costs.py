"""Cost estimates per node and pipeline, and the budget rule.

A pipeline's ``config.budget`` (USD) caps what it may spend: work whose estimate exceeds
``budget - metadata.totalCost`` is refused before anything is submitted. A node whose
finished work can be reused (``domain.signatures``) costs nothing: :func:`with_reuse` marks
those lines, which then count $0 and say what they save.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.node_types import effective_provider, referenced_uuids
from vidpipe_dagster.domain.prices import CostEstimate
from vidpipe_dagster.domain.signatures import (
    ReuseSource,
    find_sources,
    node_fields,
    planned_signatures,
)

TEXT_SLOTS = ("script", "prompt")

Pricer = Callable[..., CostEstimate]
"""``price(provider, node_type, config, *, script_chars=None)``: a node's estimate from its
provider's price function (``resources.providers.prices.pricer`` builds one from settings)."""


@dataclass(frozen=True)
class NodeEstimate:
    """One node's estimated cost; ``reuse`` is the stored output it would take instead."""

    node: Node
    estimate: CostEstimate
    reuse: ReuseSource | None = None

    @property
    def usd(self) -> float:
        """What running the node is expected to spend: nothing when its work is reused."""
        return 0.0 if self.reuse is not None else self.estimate.usd

    def as_json(self) -> dict[str, Any]:
        """The node's line of the estimate endpoint."""
        line = {
            "node_uuid": self.node.uuid,
            "title": self.node.title,
            "type": self.node.type,
            **self.estimate.as_metadata(),
            "reusable": self.reuse is not None,
        }
        if self.reuse is not None:
            line["usd"] = 0.0
            line["saved_usd"] = round(self.estimate.usd, 4)
            line["reused_from"] = {
                "node_uuid": self.reuse.node_uuid,
                "pipeline_uuid": self.reuse.pipeline_uuid,
                "title": self.reuse.title,
                "process_uuid": self.reuse.process_uuid,
            }
        return line


def _text_length(node: Node | None) -> int | None:
    if node is None:
        return None
    content = (node.asset or {}).get("content") if isinstance(node.asset, dict) else None
    if isinstance(content, str):
        return len(content)
    output = node.output or {}
    if output.get("type") == "text" and isinstance(output.get("size"), int):
        return output["size"]
    return None


def estimate_node(
    node: Node,
    nodes: Mapping[str, Node],
    *,
    price: Pricer,
    force_local: bool = False,
) -> NodeEstimate:
    """Estimate one run of ``node``; ``nodes`` (uuid -> node) supplies its script's length."""
    provider = effective_provider(node.type, node.config, force_local=force_local)
    inputs = node.inputs or {}
    script_chars: int | None = None
    for slot in TEXT_SLOTS:
        lengths = [_text_length(nodes.get(u)) for u in referenced_uuids({slot: inputs.get(slot)})]
        known = [n for n in lengths if n is not None]
        if known:
            script_chars = sum(known)
            break
    estimate = price(provider, node.type, node.config or {}, script_chars=script_chars)
    return NodeEstimate(node=node, estimate=estimate)


def estimate_nodes(
    selected: Iterable[Node],
    every: Iterable[Node],
    *,
    price: Pricer,
    force_local: bool = False,
) -> list[NodeEstimate]:
    """Estimates for ``selected``, reading script lengths from ``every`` node of the pipeline."""
    by_uuid = {node.uuid: node for node in every}
    return [estimate_node(node, by_uuid, price=price, force_local=force_local) for node in selected]


def with_reuse(
    session: Session,
    lines: Iterable[NodeEstimate],
    every: Iterable[Node],
    *,
    force_local: bool = False,
) -> list[NodeEstimate]:
    """``lines`` with the stored output each node would reuse, in one lookup.

    The signatures are planned for a run of the lines' nodes (``planned_signatures``); a
    node prefers its own output, then any other with the same signature.
    """
    lines = list(lines)
    every = list(every)
    planned = planned_signatures(
        [node_fields(node) for node in every],
        running=[line.node.uuid for line in lines],
        force_local=force_local,
    )
    sources = find_sources(
        session, [s for s in planned.values() if s], prefer=[node.uuid for node in every]
    )
    marked: list[NodeEstimate] = []
    for line in lines:
        candidates = sources.get(planned.get(line.node.uuid) or "", [])
        own = [c for c in candidates if c.node_uuid == line.node.uuid]
        best = own or candidates
        marked.append(replace(line, reuse=best[0] if best else None))
    return marked


def budget_summary(pipeline: Pipeline, total: float) -> dict[str, Any]:
    """Budget, spent, remaining and the estimate ``total`` of a pipeline, in USD."""
    budget = (pipeline.config or {}).get("budget")
    spent = float((pipeline.metadata_ or {}).get("totalCost") or 0.0)
    numeric = isinstance(budget, int | float) and not isinstance(budget, bool)
    budget_usd = float(budget) if numeric and budget is not None else None
    return {
        "total_usd": round(total, 4),
        "budget_usd": budget_usd,
        "spent_usd": round(spent, 4),
        "remaining_usd": round(budget_usd - spent, 4) if budget_usd is not None else None,
    }


def check_budget(pipeline: Pipeline, estimates: Iterable[NodeEstimate]) -> None:
    """Raise ``ValidationError`` when the estimate exceeds what is left of the budget."""
    lines = list(estimates)
    total = sum(line.usd for line in lines)
    summary = budget_summary(pipeline, total)
    remaining = summary["remaining_usd"]
    if remaining is None or total <= 0 or total <= remaining + 1e-9:
        return
    raise ValidationError(
        f"Over budget: running {len(lines)} node(s) is estimated at ${total:.2f}, but only "
        f"${max(remaining, 0):.2f} of the pipeline's ${summary['budget_usd']:.2f} budget is left"
    )
