"""The compiled graph: keys, deps, groups, kinds, code versions, broken pipelines."""

from __future__ import annotations

import re
import uuid
from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)
from dagster._core.definitions.repository_definition import RepositoryLoadData
from sqlalchemy import delete, update

from tests.dagster.builders import DEMO_NODES, NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.orchestration.compiler import (
    compile_snapshot,
    node_code_version,
)
from vidpipe_dagster.runs.plans import SHAPE_METADATA


def summary(defs: dg.Definitions) -> dict[str, dict[str, Any]]:
    """What a reader checks of each compiled node, keyed by node name-independent key."""
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        out[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "deps": sorted(d.to_user_string() for d in node.parent_keys),
            "code_version": node.code_version,
            "description": node.description,
            "metadata": {k: v for k, v in node.metadata.items() if not k.startswith("dagster/")},
        }
    return out


SNAPSHOT_CODE_VERSIONS = {
    "script": "11bb4147ca22a09c5bfafbdf845ef003cfece37f05b508e4a60c7e9c6735a81a",
    "voiceover": "3307b12b107e3ae71a882d2300bab81385aa749691c4805676406cbf44e23398",
    "talking": "68fcdd2cfd5ae319ba3df505ba550b5c7269f3c7aa765cf644f64cd2fad734d9",
    "code": "656b128902956661282f46abf995508bcdb40937178fe10a7c7a47798b001395",
    "animation": "4f1b3e40b3a944a81b4bcd079597905b4699ecf4108726f170b301f0784808c4",
    "merge": "a60fe7b6f40a41bdaa8e2f201d16add9ad71d743ec175afc572ca6bdd7e08551",
    "mix": "b5e2c6c74c5ae5e327667bbf8b67a3b1383748fdd2c59198b7fcf5f04a1f4262",
    "compose": "1c8f537bb3d6d2641669386c2c05da30195ef4dae2c79fb8797e4caef0580788",
}


def test_compiled_graph_of_the_demo_pipeline(sessions, load_location) -> None:
    ids = add_pipeline(sessions, name="demo", nodes=DEMO_NODES)
    group = "demo"

    def key(name: str) -> str:
        return f"{group}/{name}"

    compiled = summary(load_location())

    expected_deps = {
        "script": [],
        "voiceover": ["script"],
        "talking": ["script"],
        "code": [],
        "animation": ["script"],
        "merge": ["animation", "code"],
        "mix": ["merge", "voiceover"],
        "compose": ["mix", "talking"],
    }
    expected_kinds = {
        "script": "storage",
        "voiceover": "local",
        "talking": "local",
        "code": "local",
        "animation": "local",
        "merge": "ffmpeg",
        "mix": "ffmpeg",
        "compose": "ffmpeg",
    }
    assert set(compiled) == {key(name) for name in expected_deps}
    for row in DEMO_NODES:
        entry = compiled[key(row.name)]
        assert entry["group"] == group
        assert entry["kinds"] == [expected_kinds[row.name]]
        assert entry["deps"] == sorted(key(d) for d in expected_deps[row.name])
        assert entry["description"] == (
            f"{row.name}\n\n{row.type} node, {expected_kinds[row.name]}"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", entry["metadata"].pop(SHAPE_METADATA))
        assert entry["metadata"] == {
            "title": row.name,
            "pipeline_uuid": ids["pipeline"],
            "node_uuid": ids[row.name],
            "node_type": row.type,
        }
    versions = {row.name: compiled[key(row.name)]["code_version"] for row in DEMO_NODES}
    assert versions == SNAPSHOT_CODE_VERSIONS


BASE = {"type": "mix-audio", "inputs": {"video": ["a"], "audio": ["b"]}, "config": {"volume": 1}}


@pytest.mark.parametrize(
    ("change", "changes_version"),
    [
        ({"title": "renamed"}, False),
        ({"inputs": {"audio": ["b"], "video": ["a"]}}, False),
        ({"config": {"volume": 0.5}}, True),
        ({"config": {"volume": 1, "mode": "overlay"}}, True),
        ({"inputs": {"video": ["a"], "audio": ["c"]}}, True),
        ({"inputs": {"video": ["a"], "audio": "b"}}, True),
        ({"asset": {"url": "s3://x/y.mp4"}}, True),
        ({"type": "compose-video"}, True),
    ],
)
def test_code_version_changes_exactly_when_structure_changes(
    change: dict[str, Any], changes_version: bool
) -> None:
    before = {"uuid": "n", "title": "t", **BASE}
    after = {**before, **change}
    assert (node_code_version(before) != node_code_version(after)) is changes_version


def test_code_version_follows_a_row_edit(sessions, load_location) -> None:
    ids = add_pipeline(sessions, name="edit", nodes=DEMO_NODES)
    compose = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["compose"])
    mix = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["mix"])
    before = load_location().resolve_asset_graph()
    with sessions() as session, session.begin():
        session.execute(
            update(Node).where(Node.id == uuid.UUID(ids["compose"])).values(title="Renamed")
        )
    renamed = load_location().resolve_asset_graph()
    assert renamed.get(compose).code_version == before.get(compose).code_version
    assert renamed.get(compose).description.splitlines()[0] == "Renamed"
    with sessions() as session, session.begin():
        session.execute(
            update(Node).where(Node.id == uuid.UUID(ids["compose"])).values(config={"scale": 0.5})
        )
    edited = load_location().resolve_asset_graph()
    assert edited.get(compose).code_version != before.get(compose).code_version
    assert edited.get(mix).code_version == before.get(mix).code_version


def test_broken_pipelines_are_left_out_and_reported(sessions, load_location) -> None:
    good = add_pipeline(sessions, name="good", nodes=DEMO_NODES[:2])
    cycle = add_pipeline(
        sessions,
        name="cycle",
        nodes=[
            NodeRow("a", "merge-videos", inputs={"segments": ["b", "c"]}),
            NodeRow("b", "merge-videos", inputs={"segments": ["a", "c"]}),
            NodeRow("c", "asset"),
        ],
    )
    unknown = add_pipeline(sessions, name="unknown", nodes=[NodeRow("x", "make-coffee")])
    missing = str(uuid.uuid4())
    dangling = add_pipeline(
        sessions,
        name="dangling",
        nodes=[NodeRow("v", "generate-voiceover", inputs={"script": [missing]})],
    )
    bad_cron = add_pipeline(
        sessions, name="cron", nodes=[NodeRow("s", "asset")], config={"schedule": "often"}
    )

    defs = load_location()
    dg.Definitions.validate_loadable(defs)
    groups = {node.group_name for node in defs.resolve_asset_graph().asset_nodes}
    assert groups == {"good"}

    with sessions() as session:
        errors = {
            str(p.id): (p.metadata_ or {}).get("compileError") for p in session.query(Pipeline)
        }
    assert errors[good["pipeline"]] is None
    assert "cycle" in errors[cycle["pipeline"]]
    assert cycle["a"] in errors[cycle["pipeline"]] and cycle["b"] in errors[cycle["pipeline"]]
    assert "unknown node type 'make-coffee'" in errors[unknown["pipeline"]]
    assert missing in errors[dangling["pipeline"]]
    assert "'often' is not a valid cron string" in errors[bad_cron["pipeline"]]

    with sessions() as session, session.begin():
        session.execute(delete(Node).where(Node.id == uuid.UUID(unknown["x"])))
        session.execute(
            update(Node).where(Node.id == uuid.UUID(dangling["v"])).values(inputs={"script": []})
        )
    load_location()
    with sessions() as session:
        fixed = {p.id: p.metadata_ for p in session.query(Pipeline)}
    assert "compileError" not in fixed[uuid.UUID(dangling["pipeline"])]
    assert "compileError" not in fixed[uuid.UUID(unknown["pipeline"])]
    assert "compileError" in fixed[uuid.UUID(cycle["pipeline"])]


def test_pipeline_schedule_is_compiled_from_config(sessions, load_location) -> None:
    add_pipeline(sessions, name="nightly", nodes=DEMO_NODES[:2], config={"schedule": "0 3 * * *"})
    defs = load_location()
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    result = schedule.evaluate_tick(dg.build_schedule_context())
    assert [request.stale_assets_only for request in result.run_requests] == [True]


def test_run_workers_rebuild_the_planned_graph_without_the_database(sessions, database_url) -> None:
    """A run worker reconstructs from the state its run carried, even after rows changed."""
    ids = add_pipeline(sessions, name="planned", nodes=DEMO_NODES)
    init = DefinitionsLoadContext(load_type=DefinitionsLoadType.INITIALIZATION)
    with DefinitionsLoadContext.scoped(init):
        planned = build_definitions(database_url=database_url)
        repo = planned.get_repository_def()
    compose = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["compose"])
    assert compose == dg.AssetKey(["planned", "compose"])
    with sessions() as session, session.begin():
        session.execute(delete(Pipeline))

    reconstruction = DefinitionsLoadContext(
        load_type=DefinitionsLoadType.RECONSTRUCTION,
        repository_load_data=RepositoryLoadData(
            cacheable_asset_data={},
            reconstruction_metadata=repo.repository_load_data.reconstruction_metadata,
            defs_state_info=repo.repository_load_data.defs_state_info,
        ),
    )
    with DefinitionsLoadContext.scoped(reconstruction):
        rebuilt = build_definitions(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    keys = rebuilt.resolve_asset_graph().get_all_asset_keys()
    assert compose in keys
    assert len(keys) == len(DEMO_NODES)


def test_compile_snapshot_can_build_only_some_pipelines() -> None:
    snapshot = {
        "pipelines": [
            {
                "uuid": str(uuid.uuid4()),
                "title": f"p{i}",
                "config": {},
                "nodes": [
                    {
                        "uuid": str(uuid.uuid4()),
                        "title": "s",
                        "type": "asset",
                        "inputs": {},
                        "config": {},
                        "asset": None,
                    }
                ],
            }
            for i in range(3)
        ]
    }
    wanted = snapshot["pipelines"][1]["uuid"]
    result = compile_snapshot(snapshot, only=[wanted])
    title = snapshot["pipelines"][1]["title"]
    assert [a.group_names_by_key.popitem()[1] for a in result.assets] == [
        f"{title}_{wanted.replace('-', '')[:8]}"
    ]


def test_automation_condition_is_on_every_node_unless_turned_off(monkeypatch) -> None:
    node = {"uuid": str(uuid.uuid4()), "title": "s", "type": "asset", "inputs": {}}
    snapshot = {"pipelines": [{"uuid": str(uuid.uuid4()), "title": "p", "nodes": [node]}]}

    def conditions(result):
        return [spec.automation_condition for assets in result.assets for spec in assets.specs]

    from vidpipe_dagster.orchestration.compiler import NODE_AUTOMATION

    assert conditions(compile_snapshot(snapshot)) == [NODE_AUTOMATION]
    assert conditions(compile_snapshot(snapshot, automation=False)) == [None]
    monkeypatch.setenv("VIDPIPE_AUTOMATION", "off")
    from vidpipe_dagster.settings import get_settings

    get_settings.cache_clear()
    try:
        assert conditions(compile_snapshot(snapshot)) == [None]
    finally:
        monkeypatch.delenv("VIDPIPE_AUTOMATION")
        get_settings.cache_clear()


def test_paid_provider_nodes_run_in_their_providers_pool(monkeypatch) -> None:
    def node(name: str, node_type: str, provider: str | None = None, **inputs: list[str]):
        config = {"provider": provider} if provider else {}
        return {"uuid": name, "title": name, "type": node_type, "inputs": inputs, "config": config}

    ids = {n: str(uuid.uuid5(uuid.NAMESPACE_DNS, n)) for n in ("s", "v", "h", "a", "m")}
    nodes = [
        node(ids["s"], "asset"),
        node(ids["v"], "generate-voiceover", "elevenlabs", script=[ids["s"]]),
        node(ids["h"], "talking-head", "heygen", script=[ids["v"]]),
        node(ids["a"], "generate-animation", "local", prompt=[ids["s"]]),
        node(ids["m"], "merge-videos", segments=[ids["h"], ids["a"]]),
    ]
    pipeline_uuid = str(uuid.uuid4())
    snapshot = {"pipelines": [{"uuid": pipeline_uuid, "title": "p", "nodes": nodes}]}

    def pools(result):
        return {assets.op.pool: sorted(k.path[1] for k in assets.keys) for assets in result.assets}

    def stem(name: str) -> str:
        return ids[name].replace("-", "_")

    assert pools(compile_snapshot(snapshot)) == {
        None: sorted([stem("s"), stem("a"), stem("m")]),
        "elevenlabs": [stem("v")],
        "heygen": [stem("h")],
    }
    [main] = [a for a in compile_snapshot(snapshot).assets if a.op.pool is None]
    assert main.op.name == f"p_{pipeline_uuid.replace('-', '')[:8]}"

    from vidpipe_dagster.settings import get_settings

    monkeypatch.setenv("VIDPIPE_PROVIDERS", "local")
    get_settings.cache_clear()
    try:
        assert list(pools(compile_snapshot(snapshot))) == [None]
    finally:
        monkeypatch.delenv("VIDPIPE_PROVIDERS")
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("config", "pipeline_config", "providers", "automated"),
    [
        ({"provider": "heygen"}, {}, None, False),
        ({"provider": "heygen"}, {"autoRun": True}, None, True),
        ({"provider": "heygen"}, {"autoRun": "yes"}, None, False),
        ({"provider": "heygen"}, {}, "local", True),
        ({"provider": "local"}, {}, None, True),
        ({}, {}, None, True),
    ],
)
def test_paid_nodes_are_automated_only_when_their_pipeline_opts_in(
    monkeypatch, config, pipeline_config, providers, automated
) -> None:
    from vidpipe_dagster.orchestration.compiler import NODE_AUTOMATION
    from vidpipe_dagster.settings import get_settings

    script = {"uuid": str(uuid.uuid4()), "title": "s", "type": "asset", "inputs": {}}
    head = {
        "uuid": str(uuid.uuid4()),
        "title": "head",
        "type": "talking-head",
        "inputs": {"script": [script["uuid"]]},
        "config": config,
    }
    pipeline = {"uuid": str(uuid.uuid4()), "title": "p", "config": pipeline_config}
    snapshot = {"pipelines": [{**pipeline, "nodes": [script, head]}]}
    if providers:
        monkeypatch.setenv("VIDPIPE_PROVIDERS", providers)
    else:
        monkeypatch.delenv("VIDPIPE_PROVIDERS", raising=False)
    get_settings.cache_clear()
    try:
        result = compile_snapshot(snapshot)
    finally:
        get_settings.cache_clear()
    conditions = {
        spec.metadata["title"]: spec.automation_condition
        for assets in result.assets
        for spec in assets.specs
    }
    assert conditions["s"] == NODE_AUTOMATION  # a free node always follows its inputs
    assert conditions["head"] == (NODE_AUTOMATION if automated else None)
