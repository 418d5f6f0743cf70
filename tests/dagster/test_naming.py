"""Dagster names from titles: safe, unique, recorded once, and kept across a rename."""

from __future__ import annotations

import contextlib
import threading
import uuid

import dagster as dg
import pytest
from dagster._core.definitions.utils import is_valid_name
from sqlalchemy import insert, select

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of, node_asset_key, nodes_of_keys
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.names import MAX_NAME, safe_name, unique_name
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.naming import names_of, resolve_names, run_tags
from vidpipe_dagster.domain.nodes import create_node, update_node
from vidpipe_dagster.domain.pipelines import create_pipeline, update_pipeline


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Voiceover", "voiceover"),
        ("Talking head (v2)", "talking_head_v2"),
        ("Café crème — intro!", "cafe_creme_intro"),
        ("  ", "node"),
        ("日本語", "node"),
        ("class", "node_class"),
        ("Type", "node_type"),
        ("3 scenes", "3_scenes"),
        ("x" * 80, "x" * MAX_NAME),
    ],
)
def test_titles_become_safe_dagster_names(title: str, expected: str) -> None:
    name = safe_name(title, fallback="node")
    assert name == expected
    assert is_valid_name(name) and len(name) <= MAX_NAME
    dg.AssetSpec(key=dg.AssetKey(["p", name]), group_name=name)  # Dagster accepts it


def test_clashing_names_get_the_next_free_suffix() -> None:
    assert unique_name("intro", set()) == "intro"
    assert unique_name("intro", {"intro"}) == "intro_2"
    assert unique_name("intro", {"intro", "intro_2", "intro_3"}) == "intro_4"
    long = "y" * MAX_NAME
    assert unique_name(long, {long}) == "y" * (MAX_NAME - 2) + "_2"


def test_created_rows_record_unique_names(sessions) -> None:
    with sessions() as session, session.begin():
        first = create_pipeline(session, title="Product launch")
        second = create_pipeline(session, title="Product Launch!")
        nodes = [
            create_node(session, first, title=title, type="asset")
            for title in ("Voiceover", "Voiceover", "Talking head")
        ]
        names = ([first.dagster_name, second.dagster_name], [n.dagster_name for n in nodes])
    assert names == (
        ["product_launch", "product_launch_2"],
        ["voiceover", "voiceover_2", "talking_head"],
    )


def test_pipelines_created_at_once_with_one_title_record_different_names(sessions) -> None:
    """Eight transactions create "Intro" together, each flushing before any commits (as
    concurrent API creations do): each must record its own name, or the location holding
    them would not load."""
    count = 8
    overlap = threading.Barrier(count)
    names: list[str] = []

    def create() -> None:
        with sessions() as session:
            pipeline = create_pipeline(session, title="Intro")
            session.flush()
            with contextlib.suppress(threading.BrokenBarrierError):
                overlap.wait(timeout=1)  # without the naming lock, all flush before any commit
            session.commit()
            names.append(pipeline.dagster_name)

    threads = [threading.Thread(target=create) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(names) == sorted(["intro", *(f"intro_{n}" for n in range(2, count + 1))])


def test_a_rename_keeps_the_key_and_the_materialization_history(sessions, resource) -> None:
    ids = add_pipeline(
        sessions,
        name="Weekly update",
        nodes=[NodeRow("s", "asset", asset={"type": "text", "content": "Hi."}, title="Intro text")],
    )
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["s"])
    assert key == dg.AssetKey(["weekly_update", "intro_text"])
    with dg.instance_for_test() as instance:
        _materialize(sessions, resource, instance, key)
        with sessions() as session, session.begin():
            update_node(session, session.get(Node, uuid.UUID(ids["s"])), title="Opening words")
            update_pipeline(session, session.get(Pipeline, uuid.UUID(ids["pipeline"])), title="W2")
        defs = _materialize(sessions, resource, instance, key)
        history = instance.fetch_materializations(key, limit=10).records
    assert key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["s"]) == key
    assert defs.resolve_asset_graph().get(key).description.splitlines()[0] == "Opening words"
    assert len(history) == 2


def _materialize(sessions, resource, instance, key: dg.AssetKey) -> dg.Definitions:
    with sessions() as session:
        snapshot = take_snapshot(session)
    defs = build_definitions(snapshot=snapshot, resource=resource)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.execute_in_process(instance=instance, asset_selection=[key]).success
    return defs


def test_rows_inserted_without_a_name_are_named_by_the_location(sessions, load_location) -> None:
    pipeline_id, node_id = uuid.uuid4(), uuid.uuid4()
    with sessions() as session, session.begin():
        session.execute(insert(Pipeline).values(id=pipeline_id, title="Editor made", config={}))
        session.execute(
            insert(Node).values(
                id=node_id, pipeline_id=pipeline_id, title="Hook line", type="asset",
                inputs={}, config={}, asset={"type": "text", "text": "Hook."},
            )
        )  # fmt: skip
    pipeline_uuid, node_uuid = str(pipeline_id), str(node_id)
    fallback = key_of(sessions, pipeline_uuid=pipeline_uuid, node_uuid=node_uuid)
    assert fallback == dg.AssetKey([f"editor_made_{pipeline_id.hex[:8]}", "hook_line"])

    keys = load_location().resolve_asset_graph().get_all_asset_keys()
    recorded = dg.AssetKey(["editor_made", "hook_line"])
    assert recorded in keys
    with sessions() as session, session.begin():
        session.get(Node, node_id).title = "Renamed hook"
    assert key_of(sessions, pipeline_uuid=pipeline_uuid, node_uuid=node_uuid) == recorded
    assert recorded in load_location().resolve_asset_graph().get_all_asset_keys()
    with sessions() as session:
        assert nodes_of_keys(session, [recorded, dg.AssetKey(["other", "key"])]) == {
            recorded: node_uuid
        }


def test_duplicate_recorded_names_are_told_apart_in_node_order() -> None:
    pipeline = {
        "uuid": str(uuid.uuid4()),
        "title": "P",
        "dagster_name": "p",
        "nodes": [
            {"uuid": "a", "title": "Clip", "dagster_name": "clip"},
            {"uuid": "b", "title": "Clip", "dagster_name": "clip"},
            {"uuid": "c", "title": "Clip", "dagster_name": None},
        ],
    }
    names = resolve_names(pipeline)
    assert [node_asset_key(names, u).path[-1] for u in "abc"] == ["clip", "clip_2", "clip_3"]
    assert names.node_uuid(["p", "clip_2"]) == "b"


def test_run_tags_name_the_pipeline_and_nodes(sessions) -> None:
    ids = add_pipeline(
        sessions,
        name="Launch video",
        nodes=[NodeRow("v", "asset", title="Voiceover"), NodeRow("t", "asset", title="Title")],
    )
    names = names_of(sessions, [ids["pipeline"]])[ids["pipeline"]]
    assert run_tags(names, source="api", node_uuids=[ids["v"], ids["t"]]) == {
        "vidpipe/pipeline": ids["pipeline"],
        "vidpipe/pipeline_title": "Launch video",
        "vidpipe/nodes": "Voiceover, Title",
        "vidpipe/source": "api",
    }
    with sessions() as session:
        stored = session.scalars(select(Node.dagster_name).order_by(Node.dagster_name)).all()
    assert stored == ["title", "voiceover"]
