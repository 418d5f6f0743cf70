"""Validation of nodes: one set of rules, rendered in either generation's messages.

:func:`node_problems` finds every :class:`Problem` of a node's type, inputs and config under
a contract generation (``VIDPIPE_API_CONTRACT``):

- ``seed``: every slot is an array of node UUIDs (the documented Rails system); config is
  not checked. Requests are held to that (``strict``); stored rows may also hold a slot as
  one UUID string, as rows written straight into the shared database do.
- ``editor``: the later Rails generation the admin editor speaks: ``multiple`` slots are
  arrays, every other slot is one node UUID string (``""`` is unconnected), and ``config``
  follows ``CONFIG_SCHEMAS`` (providers allowed per type, required fields).

:func:`seed_message` and :func:`editor_message` word a problem as each generation does;
:func:`validity` is what every node JSON carries (``is_valid``, ``validation_errors``) and
what the engine checks before it runs a node.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.graph import dependencies, find_cycle
from vidpipe_dagster.domain.node_types import (
    CONFIG_SCHEMAS,
    EDITOR_NODE_TYPES,
    INPUT_SCHEMAS,
    NODE_TYPES,
    InputSlot,
    canonical_type,
)

SEED = "seed"
EDITOR = "editor"

Exists = Callable[[list[str]], set[str]]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a node.

    ``section`` is ``type``, ``inputs`` or ``config``; ``key`` the slot or config field
    (``unexpected_inputs`` / ``invalid_type`` for the node as a whole); ``code`` names the
    rule and ``detail`` its particulars.
    """

    section: str
    key: str
    code: str
    node_type: str
    detail: dict[str, Any] = field(default_factory=dict)


def _as_uuid(value: str) -> uuid_lib.UUID | None:
    try:
        return uuid_lib.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def existing_node_uuids(session: Session, pipeline_id: Any, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` name nodes of the pipeline, in one query."""
    parsed = {c: _as_uuid(c) for c in candidates if isinstance(c, str)}
    ids = {u for u in parsed.values() if u is not None}
    if not ids:
        return set()
    found = set(
        session.scalars(select(Node.id).where(Node.pipeline_id == pipeline_id, Node.id.in_(ids)))
    )
    return {text for text, parsed_id in parsed.items() if parsed_id in found}


def known_types(contract: str, *, strict: bool) -> tuple[str, ...]:
    """The type names a contract accepts: a seed request only the seed's eight, anything
    else either generation's names (the engine runs both)."""
    if contract == SEED and strict:
        return NODE_TYPES
    return NODE_TYPES + tuple(name for name in EDITOR_NODE_TYPES if name not in NODE_TYPES)


def _blank(value: Any, *, contract: str) -> bool:
    if contract == SEED:
        return value is None or value == []
    return value is None or value in ("", [], {})


def _slot_references(
    slot: InputSlot, value: Any, *, node_type: str, contract: str, strict: bool
) -> tuple[list[Any], list[Problem]]:
    """``(references, problems)`` of one input slot's value."""
    if _blank(value, contract=contract):
        required = [Problem("inputs", slot.name, "required", node_type)] if slot.required else []
        return [], required
    if contract == EDITOR and not slot.multiple:
        if not isinstance(value, str):
            return [], [Problem("inputs", slot.name, "not_single", node_type)]
        return [value], []
    if isinstance(value, str) and not strict and contract == SEED:
        if value:
            return [value], []
        required = [Problem("inputs", slot.name, "required", node_type)] if slot.required else []
        return [], required
    if not isinstance(value, list):
        return [], [Problem("inputs", slot.name, "not_array", node_type)]
    if slot.min_items is not None and len(value) < slot.min_items:
        detail = {"minimum": slot.min_items, "count": len(value)}
        too_few = [Problem("inputs", slot.name, "min_items", node_type, detail)]
        return ([] if contract == EDITOR else value), too_few
    return value, []


def _missing_references(
    references: dict[str, list[Any]], *, node_type: str, exists: Exists
) -> list[Problem]:
    """A ``missing_nodes`` problem per slot naming anything ``exists`` does not know."""
    if not references:
        return []
    every = [item for items in references.values() for item in items]
    known = exists([item for item in every if isinstance(item, str)])
    problems = []
    for name, items in references.items():
        missing = [str(item) for item in items if not isinstance(item, str) or item not in known]
        if missing:
            problems.append(Problem("inputs", name, "missing_nodes", node_type, {"uuids": missing}))
    return problems


def node_problems(
    node_type: str,
    inputs: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None = None,
    *,
    exists: Exists,
    contract: str = SEED,
    strict: bool = False,
) -> list[Problem]:
    """Every problem of a node, in the order its generation reports them.

    ``exists`` takes every referenced string and returns those naming nodes of the
    pipeline; it is called at most once. ``strict`` holds a seed request to arrays only
    (a stored seed row may hold a slot as one UUID string).
    """
    if not isinstance(node_type, str) or node_type not in known_types(contract, strict=strict):
        return [Problem("type", "invalid_type", "unknown_type", str(node_type))]
    schema = INPUT_SCHEMAS[canonical_type(node_type)]
    inputs = dict(inputs or {}) if isinstance(inputs, Mapping) else {}
    problems: list[Problem] = []
    names = [slot.name for slot in schema]
    unexpected = [name for name in inputs if name not in names]
    if unexpected and (schema or contract == SEED):
        problems.append(
            Problem("inputs", "unexpected_inputs", "unexpected", node_type, {"names": unexpected})
        )
    if not schema and inputs:
        problems.append(Problem("inputs", "unexpected_inputs", "no_inputs", node_type))
    references: dict[str, list[Any]] = {}
    for slot in schema:
        found, slot_problems = _slot_references(
            slot, inputs.get(slot.name), node_type=node_type, contract=contract, strict=strict
        )
        problems.extend(slot_problems)
        if found:
            references[slot.name] = found
    problems.extend(_missing_references(references, node_type=node_type, exists=exists))
    if contract == EDITOR:
        problems.extend(config_problems(node_type, config))
    return problems


CONFIG_KINDS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "hash": lambda v: isinstance(v, dict),
}


def config_problems(node_type: str, config: Mapping[str, Any] | None) -> list[Problem]:
    """The editor generation's config rules (``CONFIG_SCHEMAS``) applied to ``config``."""
    config = config if isinstance(config, Mapping) else {}
    problems: list[Problem] = []
    for rule in CONFIG_SCHEMAS.get(canonical_type(node_type), ()):
        value = config.get(rule.name)
        if value is None:
            if rule.required:
                problems.append(Problem("config", rule.name, "required", node_type))
            continue
        if not CONFIG_KINDS[rule.kind](value):
            problems.append(Problem("config", rule.name, "kind", node_type, {"kind": rule.kind}))
        elif rule.allowed is not None and value not in rule.allowed:
            problems.append(
                Problem("config", rule.name, "choice", node_type, {"allowed": rule.allowed})
            )
    return problems


def seed_message(problem: Problem) -> str:
    """``problem`` worded as the seed system words it."""
    slot, kind, detail = problem.key, problem.node_type, problem.detail
    match problem.code:
        case "unknown_type":
            return f"Unknown node type: {kind}"
        case "unexpected":
            names = ", ".join(map(str, detail["names"]))
            return f"Unexpected input slot(s) for {kind} nodes: {names}"
        case "no_inputs":
            return f"{kind} nodes should not have inputs"
        case "required":
            return f"Input '{slot}' is required for {kind} nodes"
        case "not_array" | "not_single":
            return f"Input '{slot}' must be an array for {kind} nodes"
        case "min_items":
            minimum, count = detail["minimum"], detail["count"]
            return f"Input '{slot}' requires at least {minimum} item(s), got {count}"
        case "missing_nodes":
            return f"Input '{slot}' references non-existent nodes: {', '.join(detail['uuids'])}"
    return editor_message(problem)


def editor_message(problem: Problem) -> str:
    """``problem`` worded as the later Rails generation words it (no "Input 'x'" prefix)."""
    kind, detail = problem.node_type, problem.detail
    match problem.code:
        case "unknown_type":
            return f"Unknown node type: {kind}"
        case "unexpected":
            return f"Unexpected input slot(s): {', '.join(map(str, detail['names']))}"
        case "no_inputs":
            return f"{kind} nodes should not have inputs"
        case "required":
            return f"is required for {kind} nodes"
        case "not_array":
            return "must be an array"
        case "not_single":
            return "must be a single node UUID (string), not an array"
        case "min_items":
            return f"requires at least {detail['minimum']} items, got {detail['count']}"
        case "missing_nodes":
            return f"references non-existent nodes: {', '.join(detail['uuids'])}"
        case "kind":
            return f"must be a {detail['kind']}"
        case "choice":
            return f"must be one of: {', '.join(detail['allowed'])}"
    return problem.code


MESSAGES = {SEED: seed_message, EDITOR: editor_message}


def error_map(problems: Iterable[Problem], *, contract: str) -> dict[str, Any]:
    """``validation_errors`` in the editor client's shape:
    ``{"inputs": {slot: [messages]}, "config": {field: [messages]}}``; an unknown type is
    ``{"invalid_type": "Unknown node type: X"}``."""
    word = MESSAGES[contract]
    errors: dict[str, Any] = {}
    for problem in problems:
        if problem.section == "type":
            return {"invalid_type": word(problem)}
        errors.setdefault(problem.section, {}).setdefault(problem.key, []).append(word(problem))
    return errors


def describe_errors(errors: Mapping[str, Any]) -> str:
    """``validation_errors`` as one line: ``slot: message; field: message``."""
    if "invalid_type" in errors:
        return str(errors["invalid_type"])
    parts = [
        f"{key}: {message}"
        for section in ("inputs", "config")
        for key, messages in (errors.get(section) or {}).items()
        for message in messages
    ]
    return "; ".join(parts)


@dataclass(frozen=True)
class Validity:
    """What a node JSON carries: ``is_valid`` and ``validation_errors``."""

    problems: tuple[Problem, ...]
    contract: str

    @property
    def is_valid(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    @property
    def errors(self) -> dict[str, Any]:
        """``validation_errors`` in the client's shape (``{}`` when valid)."""
        return error_map(self.problems, contract=self.contract)

    def messages(self) -> list[str]:
        """Every problem worded as its generation words it, in order."""
        return [MESSAGES[self.contract](problem) for problem in self.problems]


def validity(
    node_type: str,
    inputs: Mapping[str, Any] | None,
    config: Mapping[str, Any] | None,
    *,
    known_uuids: Iterable[str],
    contract: str,
) -> Validity:
    """The validity of a stored node, given the UUIDs of its pipeline's nodes."""
    known = set(known_uuids)
    problems = node_problems(
        node_type,
        inputs,
        config,
        exists=lambda refs: set(refs) & known,
        contract=contract,
    )
    return Validity(problems=tuple(problems), contract=contract)


def input_errors(
    node_type: str,
    inputs: Mapping[str, Any] | None,
    *,
    exists: Any,
) -> list[str]:
    """Every problem with ``inputs`` of a seed request, in the seed's order and words.

    ``exists`` is a callable taking all referenced strings and returning the set that name
    existing nodes of the pipeline; it is called at most once.
    """
    problems = node_problems(node_type, inputs, exists=exists, contract=SEED, strict=True)
    return [seed_message(problem) for problem in problems]


def validate_inputs(
    session: Session,
    *,
    node_type: str,
    inputs: Mapping[str, Any] | None,
    pipeline_id: Any,
    existing: set[str] | None = None,
) -> None:
    """Raise ``ValidationError`` with every problem joined by ", " when ``inputs`` are invalid.

    ``existing``, when given, are the referenced UUIDs already known to name nodes of the
    pipeline (read for several nodes at once); otherwise they are read here.
    """
    errors = input_errors(
        node_type,
        inputs,
        exists=(
            (lambda refs: set(refs) & existing)
            if existing is not None
            else (lambda refs: existing_node_uuids(session, pipeline_id, refs))
        ),
    )
    if errors:
        raise ValidationError(", ".join(errors))


def check_acyclic(
    session: Session, *, pipeline_id: Any, node_uuid: str, inputs: Mapping[str, Any] | None
) -> None:
    """Raise ``ValidationError`` naming the cycle if giving ``node_uuid`` these inputs makes one."""
    rows = session.execute(
        select(Node.id, Node.title, Node.inputs).where(Node.pipeline_id == pipeline_id)
    ).all()
    graph = {str(row.id): row.inputs for row in rows}
    titles = {str(row.id): row.title for row in rows}
    graph[node_uuid] = dict(inputs or {})
    cycle = find_cycle(dependencies(graph))
    if cycle:
        named = " -> ".join(f"{titles.get(u, u)} ({u})" for u in cycle)
        raise ValidationError(f"Inputs would create a cycle: {named}")
