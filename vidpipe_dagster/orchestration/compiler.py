"""Pipeline rows -> Dagster definitions.

The input is the JSON snapshot of ``db.snapshot.take_snapshot``; nothing here touches the
database. Each pipeline becomes one ``multi_asset`` whose specs are its nodes (one asset per
node, ``can_subset=True``) in a group of its own; the body runs the selected nodes in
topological order through ``vidpipe_dagster.assets.materialize``. Each node asset carries the
``stored_output`` check (``vidpipe_dagster.assets.checks``). Every name is the one recorded from a
title (``vidpipe_dagster.domain.naming``):

- asset key ``[<pipeline name>, <node name>]``, e.g. ``["product_launch", "voiceover"]``,
  described by the node's title and type;
- group and op name ``<pipeline name>``;
- schedule ``<pipeline name>_schedule`` for a pipeline with ``config.schedule``.

Under ``VIDPIPE_API_CONTRACT=editor`` a node naming a node that does not exist is a draft
like any other (it compiles without that dependency and refuses to run); otherwise a
pipeline that cannot compile (unknown type, dangling reference, cycle, bad provider name or
cron) is left out and reported in ``CompileResult.errors``, never breaking the others.
"""

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
from croniter import croniter

from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.assets.checks import output_check_spec
from vidpipe_dagster.assets.materialize import RESOURCE_KEY, execute_pipeline_selection
from vidpipe_dagster.assets.pipeline_plan import PipelinePlan
from vidpipe_dagster.domain.graph import find_cycle, structure_hash, topological_order
from vidpipe_dagster.domain.naming import PipelineNames, resolve_names, schedule_name
from vidpipe_dagster.domain.node_types import (
    AI_TYPES,
    canonical_type,
    effective_provider,
    is_known_type,
    referenced_uuids,
)
from vidpipe_dagster.domain.validation import EDITOR, validity
from vidpipe_dagster.runs.plans import SHAPE_METADATA, node_shape, step_pool
from vidpipe_dagster.settings import get_settings

log = logging.getLogger(__name__)

PROVIDER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
NODE_AUTOMATION = dg.AutomationCondition.eager() | dg.AutomationCondition.code_version_changed()


def node_code_version(node: Mapping[str, Any]) -> str:
    """The sha256 of the node's structure (type, inputs, config, asset)."""
    return structure_hash(
        node_type=node["type"],
        inputs=node.get("inputs"),
        config=node.get("config"),
        asset=node.get("asset"),
    )


def node_dependencies(pipeline: Mapping[str, Any]) -> dict[str, list[str]]:
    """Map each node UUID of ``pipeline`` to the UUIDs of its nodes its ``inputs`` reference."""
    known = {node["uuid"] for node in pipeline["nodes"]}
    return {
        node["uuid"]: [uuid for uuid in referenced_uuids(node.get("inputs")) if uuid in known]
        for node in pipeline["nodes"]
    }


def _valid_cron(cron: Any) -> bool:
    return isinstance(cron, str) and len(cron.split()) == 5 and croniter.is_valid(cron)


def pipeline_problems(pipeline: Mapping[str, Any]) -> list[str]:
    """Every reason ``pipeline`` cannot compile; empty when it can.

    Checks the things that would make the compiled graph wrong or make Dagster reject it:
    unknown node types, inputs naming nodes that are not in the pipeline, cycles, provider
    names that are not plain identifiers and an invalid ``config.schedule`` cron string.
    """
    problems: list[str] = []
    nodes = pipeline["nodes"]
    known = {node["uuid"] for node in nodes}
    for node in nodes:
        label = f"node '{node.get('title')}' ({node['uuid']})"
        if not is_known_type(node.get("type")):
            problems.append(f"{label}: unknown node type {node.get('type')!r}")
            continue
        if not isinstance(node.get("inputs") or {}, dict):
            problems.append(f"{label}: inputs must be an object")
            continue
        dangling = [uuid for uuid in referenced_uuids(node.get("inputs")) if uuid not in known]
        if dangling and get_settings().api_contract != EDITOR:
            problems.append(f"{label}: inputs reference unknown nodes {', '.join(dangling)}")
        config = node.get("config")
        provider = config.get("provider") if isinstance(config, dict) else None
        if provider is not None and not (
            isinstance(provider, str) and PROVIDER_NAME.match(provider)
        ):
            problems.append(f"{label}: config.provider {provider!r} is not a provider name")
    if not problems:
        cycle = find_cycle(node_dependencies(pipeline))
        if cycle:
            problems.append(f"inputs form a cycle: {' -> '.join(cycle)}")
    cron = (pipeline.get("config") or {}).get("schedule")
    if cron is not None and not _valid_cron(cron):
        problems.append(f"config.schedule {cron!r} is not a valid cron string")
    return problems


def node_is_valid(node: Mapping[str, Any], *, known_uuids: set[str], contract: str) -> bool:
    """Whether a snapshot node is valid under ``contract`` (drafts are not)."""
    return validity(
        str(node.get("type") or ""),
        node.get("inputs"),
        node.get("config"),
        known_uuids=known_uuids,
        contract=contract,
    ).is_valid


def is_paid(node: Mapping[str, Any], *, force_local: bool = False) -> bool:
    """Whether running ``node`` costs money: an AI node whose effective provider is not
    ``local`` (``VIDPIPE_PROVIDERS=local`` makes every node free)."""
    if canonical_type(str(node.get("type"))) not in AI_TYPES:
        return False
    return effective_provider(node["type"], node.get("config"), force_local=force_local) != "local"


def auto_runs(
    pipeline: Mapping[str, Any], node: Mapping[str, Any], *, force_local: bool = False
) -> bool:
    """Whether automation may materialize ``node`` by itself: every free node, and a paid
    node only when its pipeline opts in with ``config.autoRun: true``. A paid node otherwise
    runs only when someone executes it or its pipeline's schedule does, so an edit upstream
    (or of the node itself) leaves it stale, never submitted."""
    if not is_paid(node, force_local=force_local):
        return True
    return (pipeline.get("config") or {}).get("autoRun") is True


def node_description(node: Mapping[str, Any], *, force_local: bool = False) -> str:
    """What the asset graph shows of a node: its title, then its type and provider."""
    kind = str(node.get("type") or "")
    provider = effective_provider(kind, node.get("config"), force_local=force_local)
    return f"{node.get('title') or kind}\n\n{kind} node" + (f", {provider}" if provider else "")


def _node_spec(
    names: PipelineNames,
    node: Mapping[str, Any],
    *,
    automation: bool = True,
    deps: list[str] | None = None,
    force_local: bool = False,
) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=node_asset_key(names, node["uuid"]),
        deps=[
            node_asset_key(names, uuid)
            for uuid in (referenced_uuids(node.get("inputs")) if deps is None else deps)
        ],
        description=node_description(node, force_local=force_local),
        group_name=names.group,
        kinds={
            effective_provider(
                str(node.get("type") or ""), node.get("config"), force_local=force_local
            )
        },
        code_version=node_code_version(node),
        skippable=True,
        automation_condition=NODE_AUTOMATION if automation else None,
        metadata={
            "title": node.get("title") or "",
            "pipeline_uuid": names.pipeline_uuid,
            "node_uuid": node["uuid"],
            "node_type": node["type"],
            SHAPE_METADATA: node_shape(node, force_local=force_local),
        },
    )


def pool_group(node: Mapping[str, Any], *, force_local: bool = False) -> str | None:
    """The Dagster pool a node's step runs in: its paid provider, or None for the rest."""
    return step_pool(node["type"], node.get("config"), force_local=force_local)


def compile_pipeline(
    pipeline: Mapping[str, Any], *, automation: bool = True, force_local: bool = False
) -> list[dg.AssetsDefinition]:
    """The ``multi_asset`` definitions of ``pipeline``: a spec per node, run subset by subset.

    Nodes of a paid provider go into a multi-asset of their own per provider, with that
    provider as its Dagster pool (``dagster instance concurrency set heygen 3`` caps how many
    steps submit to HeyGen at once); every other node is in the pipeline's main multi-asset.
    Dagster orders the steps by the nodes' dependencies, splitting a multi-asset into several
    steps where the graph goes back and forth. The pipeline must be free of
    ``pipeline_problems``. ``automation`` puts the eager automation condition on the nodes
    that may run by themselves (:func:`auto_runs`; ``VIDPIPE_AUTOMATION=off`` leaves it out)
    except on drafts, nodes that are not valid under ``VIDPIPE_API_CONTRACT``, which
    automation never requests (and which refuse to run when asked,
    ``node_guards.refuse_invalid``).
    """
    order = topological_order(node_dependencies(pipeline))
    nodes_by_uuid = {node["uuid"]: node for node in pipeline["nodes"]}
    contract = get_settings().api_contract
    valid = {
        uuid
        for uuid, node in nodes_by_uuid.items()
        if node_is_valid(node, known_uuids=set(nodes_by_uuid), contract=contract)
    }
    groups: dict[str | None, list[str]] = {}
    for uuid in order:
        groups.setdefault(pool_group(nodes_by_uuid[uuid], force_local=force_local), []).append(uuid)
    return [
        _pipeline_multi_asset(
            pipeline,
            pool=pool,
            order=members,
            nodes_by_uuid=nodes_by_uuid,
            automation=automation,
            automated={
                uuid
                for uuid in valid
                if auto_runs(pipeline, nodes_by_uuid[uuid], force_local=force_local)
            },
            force_local=force_local,
        )
        for pool, members in groups.items()
    ]


def _pipeline_multi_asset(
    pipeline: Mapping[str, Any],
    *,
    pool: str | None,
    order: list[str],
    nodes_by_uuid: Mapping[str, Mapping[str, Any]],
    automation: bool,
    automated: set[str],
    force_local: bool,
) -> dg.AssetsDefinition:
    pipeline_uuid = pipeline["uuid"]
    names = resolve_names(pipeline)
    deps = node_dependencies(pipeline)
    specs = [
        _node_spec(
            names,
            nodes_by_uuid[uuid],
            automation=automation and uuid in automated,
            deps=deps[uuid],
            force_local=force_local,
        )
        for uuid in order
    ]
    plan = PipelinePlan(
        pipeline_uuid=pipeline_uuid,
        order=tuple(order),
        nodes={uuid: dict(nodes_by_uuid[uuid]) for uuid in order},
        names=names,
    )
    name = names.group + (f"__{pool}" if pool else "")

    @dg.multi_asset(
        name=name,
        specs=specs,
        check_specs=[output_check_spec(spec.key) for spec in specs],
        can_subset=True,
        required_resource_keys={RESOURCE_KEY},
        description=pipeline.get("title") or None,
        pool=pool,
    )
    def _pipeline(context: dg.AssetExecutionContext):
        yield from execute_pipeline_selection(context, plan=plan)

    return _pipeline


def compile_schedule(pipeline: Mapping[str, Any]) -> dg.ScheduleDefinition | None:
    """A schedule re-materializing the pipeline's stale nodes on ``config.schedule``."""
    cron = (pipeline.get("config") or {}).get("schedule")
    if not cron:
        return None
    group = resolve_names(pipeline).group

    @dg.schedule(
        name=schedule_name(group),
        cron_schedule=cron,
        target=dg.AssetSelection.groups(group),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Re-materializes the stale nodes of pipeline '{pipeline.get('title')}'.",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(stale_assets_only=True)

    return _schedule


@dataclass
class CompileResult:
    """The compiled definitions plus, per pipeline UUID left out, why."""

    assets: list[dg.AssetsDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def definitions(self) -> dg.Definitions:
        """The compiled pipelines as a ``Definitions`` (no resources, sensors or executor)."""
        return dg.Definitions(assets=self.assets, schedules=self.schedules)


def compile_errors(snapshot: Mapping[str, Any]) -> dict[str, str]:
    """Pipeline UUID -> compile error for each pipeline in ``snapshot`` that cannot compile."""
    errors: dict[str, str] = {}
    for pipeline in snapshot.get("pipelines", []):
        problems = pipeline_problems(pipeline)
        if problems:
            errors[pipeline["uuid"]] = "; ".join(problems)
    return errors


def compile_snapshot(
    snapshot: Mapping[str, Any],
    *,
    only: Iterable[str] | None = None,
    automation: bool | None = None,
) -> CompileResult:
    """Compile every pipeline of ``snapshot`` (or only the UUIDs in ``only``).

    ``automation`` defaults to the ``VIDPIPE_AUTOMATION`` setting.
    """
    wanted = set(only) if only is not None else None
    settings = get_settings()
    if automation is None:
        automation = settings.automation == "eager"
    force_local = settings.force_local
    result = CompileResult()
    for pipeline in snapshot.get("pipelines", []):
        if wanted is not None and pipeline["uuid"] not in wanted:
            continue
        if not pipeline["nodes"]:
            continue
        problems = pipeline_problems(pipeline)
        try:
            if problems:
                raise ValueError("; ".join(problems))
            assets = compile_pipeline(pipeline, automation=automation, force_local=force_local)
            schedule = compile_schedule(pipeline)
        except Exception as error:
            result.errors[pipeline["uuid"]] = str(error)
            log.warning("pipeline %s left out: %s", pipeline["uuid"], error)
            continue
        result.assets.extend(assets)
        if schedule is not None:
            result.schedules.append(schedule)
    return result
