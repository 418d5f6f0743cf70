"""Graph rules over a pipeline's nodes: dependencies, cycles, order and structure hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from vidpipe_dagster.domain.node_types import referenced_uuids


def dependencies(nodes: Mapping[str, dict | None]) -> dict[str, list[str]]:
    """Map each node UUID to the UUIDs its ``inputs`` reference (``nodes`` maps uuid -> inputs)."""
    return {uuid: referenced_uuids(inputs) for uuid, inputs in nodes.items()}


def find_cycle(deps: Mapping[str, Iterable[str]]) -> list[str] | None:
    """Return one cycle as a list of UUIDs (first repeated at the end), or None if acyclic.

    References to UUIDs outside ``deps`` are ignored: dangling references are a separate error.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(root, iter(deps[root]))]
        path = [root]
        colour[root] = grey
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if child not in colour:
                    continue
                if colour[child] == grey:
                    return path[path.index(child) :] + [child]
                if colour[child] == white:
                    colour[child] = grey
                    stack.append((child, iter(deps[child])))
                    path.append(child)
                    advanced = True
                    break
            if not advanced:
                colour[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(deps: Mapping[str, Iterable[str]]) -> list[str]:
    """UUIDs ordered so that every node comes after its dependencies (stable for ties).

    Raises ``ValueError`` when the graph has a cycle.
    """
    remaining = {uuid: {d for d in ds if d in deps and d != uuid} for uuid, ds in deps.items()}
    if any(uuid in ds for uuid, ds in deps.items()):
        raise ValueError("graph has a self-reference")
    order: list[str] = []
    ready = [uuid for uuid, ds in remaining.items() if not ds]
    dependents: dict[str, list[str]] = {uuid: [] for uuid in deps}
    for uuid, ds in remaining.items():
        for d in ds:
            dependents[d].append(uuid)
    while ready:
        uuid = ready.pop(0)
        order.append(uuid)
        for child in dependents[uuid]:
            remaining[child].discard(uuid)
            if not remaining[child]:
                ready.append(child)
    if len(order) != len(deps):
        raise ValueError("graph has a cycle")
    return order


def downstream_of(deps: Mapping[str, Iterable[str]], roots: Iterable[str]) -> set[str]:
    """Every node that depends, directly or not, on one of ``roots`` (roots excluded)."""
    roots = set(roots)
    dependents: dict[str, set[str]] = {}
    for uuid, ds in deps.items():
        for d in ds:
            dependents.setdefault(d, set()).add(uuid)
    found: set[str] = set()
    frontier = list(roots)
    while frontier:
        for child in dependents.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found - roots


def structure_hash(*, node_type: str, inputs: Any, config: Any, asset: Any) -> str:
    """A sha256 over a node's structure fields, stable across processes and key order."""
    payload = json.dumps(
        {"type": node_type, "inputs": inputs or {}, "config": config or {}, "asset": asset},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def downstream_selection(
    nodes: Mapping[str, tuple[str, dict]], completed: Iterable[str]
) -> list[str]:
    """The nodes to run after ``completed`` finished, in topological order.

    ``nodes`` maps each node of the pipeline to ``(status, inputs)``. A descendant of a
    completed node is selected when it is not itself in progress and each of its inputs is
    completed or selected before it.
    """
    deps = {
        uuid: [u for u in referenced_uuids(inputs) if u in nodes]
        for uuid, (_, inputs) in nodes.items()
    }
    descendants = downstream_of(deps, completed)
    selected: list[str] = []
    for uuid in topological_order(deps):
        if uuid not in descendants or nodes[uuid][0] == "in_progress":
            continue
        if all(nodes[parent][0] == "completed" or parent in selected for parent in deps[uuid]):
            selected.append(uuid)
    return selected
