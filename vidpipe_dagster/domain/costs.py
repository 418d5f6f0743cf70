"""Cost estimates per node and pipeline, and the budget rule.

A pipeline's ``config.budget`` (USD) caps what it may spend: work whose estimate exceeds
``budget - metadata.totalCost`` is refused before anything is submitted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.node_types import effective_provider, referenced_uuids
from vidpipe_dagster.resources.providers.prices import CostEstimate, estimate_cost

TEXT_SLOTS = ("script", "prompt")


@dataclass(frozen=True)
class NodeEstimate:
    """One node's estimated cost."""

    node: Node
    estimate: CostEstimate

    def as_json(self) -> dict[str, Any]:
        """The node's line of the estimate endpoint."""
        return {
            "node_uuid": self.node.uuid,
            "title": self.node.title,
            "type": self.node.type,
            **self.estimate.as_metadata(),
        }


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
    force_local: bool = False,
    prices: Mapping[str, Any] | None = None,
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
    estimate = estimate_cost(
        provider, node.type, node.config or {}, script_chars=script_chars, prices=prices
    )
    return NodeEstimate(node=node, estimate=estimate)


def estimate_nodes(
    selected: Iterable[Node],
    every: Iterable[Node],
    *,
    force_local: bool = False,
    prices: Mapping[str, Any] | None = None,
) -> list[NodeEstimate]:
    """Estimates for ``selected``, reading script lengths from ``every`` node of the pipeline."""
    by_uuid = {node.uuid: node for node in every}
    return [
        estimate_node(node, by_uuid, force_local=force_local, prices=prices) for node in selected
    ]


def budget_summary(pipeline: Pipeline, total: float) -> dict[str, Any]:
    """Budget, spent, remaining and the estimate ``total`` of a pipeline, in USD."""
    budget = (pipeline.config or {}).get("budget")
    spent = float((pipeline.metadata_ or {}).get("totalCost") or 0.0)
    numeric = isinstance(budget, int | float) and not isinstance(budget, bool)
    return {
        "total_usd": round(total, 4),
        "budget_usd": float(budget) if numeric else None,
        "spent_usd": round(spent, 4),
        "remaining_usd": round(float(budget) - spent, 4) if numeric else None,
    }


def check_budget(pipeline: Pipeline, estimates: Iterable[NodeEstimate]) -> None:
    """Raise ``ValidationError`` when the estimate exceeds what is left of the budget."""
    lines = list(estimates)
    total = sum(line.estimate.usd for line in lines)
    summary = budget_summary(pipeline, total)
    remaining = summary["remaining_usd"]
    if remaining is None or total <= 0 or total <= remaining + 1e-9:
        return
    raise ValidationError(
        f"Over budget: running {len(lines)} node(s) is estimated at ${total:.2f}, but only "
        f"${max(remaining, 0):.2f} of the pipeline's ${summary['budget_usd']:.2f} budget is left"
    )
