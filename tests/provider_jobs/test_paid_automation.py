"""Automation never spends by itself: a script edit upstream of a HeyGen talking head,
evaluated over several ticks as the daemon's ``vidpipe_automation`` sensor does (each
tick's requested assets are run in process, then the provider sensor ticks), submits
nothing to the fake HeyGen unless the pipeline opts in with ``config.autoRun``.

Free nodes downstream of the edit (a local voiceover) follow it either way; an edit of the
paid node itself leaves it pending, never submitted.
"""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from sqlalchemy import update

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import all_nodes, run_in_process, sensor_tick
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.nodes import update_node

TICKS = 5
NODES = [
    NodeRow("script", "asset", asset={"type": "text", "content": "Hello, this is lesson one."}),
    NodeRow(
        "talking",
        "talking-head",
        inputs={"script": ["script"]},
        config={"provider": "heygen", "avatarId": "avatar-1", "voiceId": "voice-1"},
    ),
    NodeRow("voiceover", "generate-voiceover", inputs={"script": ["script"]}),
]


def _submissions(fake_heygen) -> int:
    return len(fake_heygen.requests_to("/v3/videos", method="POST"))


def _automation_ticks(sessions, resource, instance, *, cursor, keys):
    """``TICKS`` automation ticks, each running what it requested: the names requested per
    tick, and the cursor after them."""
    requested: list[set[str]] = []
    for _ in range(TICKS):
        with sessions() as session:
            defs = build_definitions(snapshot=take_snapshot(session), resource=resource)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        cursor = result.cursor
        wanted = [key for key in keys.values() if result.get_num_requested(key)]
        requested.append({name for name, key in keys.items() if key in wanted})
        if wanted:
            assert run_in_process(sessions, resource, instance, wanted).success
        sensor_tick(sessions, resource, instance)
    return requested, cursor


@pytest.mark.parametrize("auto_run", [False, True])
def test_a_script_edit_submits_to_heygen_only_when_the_pipeline_opts_in(
    sessions, resource, fake_heygen, auto_run
) -> None:
    fake_heygen.jobs.steps = 1
    config = {"autoRun": True} if auto_run else {}
    ids = add_pipeline(sessions, name=f"paid automation {auto_run}", nodes=NODES, config=config)
    keys = {
        n.name: key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name])
        for n in NODES
    }
    with dg.instance_for_test() as instance:
        assert run_in_process(sessions, resource, instance, list(keys.values())).success
        for _ in range(3):
            sensor_tick(sessions, resource, instance)
        first = all_nodes(sessions, ids["pipeline"])
        assert {row.status for row in first.values()} == {"completed"}
        assert _submissions(fake_heygen) == 1  # the run someone asked for
        with sessions() as session:
            defs = build_definitions(snapshot=take_snapshot(session), resource=resource)
        settled = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        quiet, cursor = _automation_ticks(
            sessions, resource, instance, cursor=settled.cursor, keys=keys
        )
        assert quiet == [set()] * TICKS  # nothing runs by itself before an edit
        before = all_nodes(sessions, ids["pipeline"])

        with sessions() as session, session.begin():  # the editor saves a new script
            session.execute(
                update(Node)
                .where(Node.id == uuid.UUID(ids["script"]))
                .values(asset={"type": "text", "content": "Hello, this is lesson two."})
            )
        ticks, cursor = _automation_ticks(sessions, resource, instance, cursor=cursor, keys=keys)

        after = all_nodes(sessions, ids["pipeline"])
        assert after[ids["voiceover"]].output_signature != before[ids["voiceover"]].output_signature
        assert sum("script" in tick for tick in ticks) == 1  # the edited node re-runs
        assert sum("voiceover" in tick for tick in ticks) == 1  # free nodes follow the edit
        if auto_run:
            assert _submissions(fake_heygen) == 2  # exactly one more, for the opted-in pipeline
            assert sum("talking" in tick for tick in ticks) == 1
            assert after[ids["talking"]].status == "completed"
            assert after[ids["talking"]].output_signature != before[ids["talking"]].output_signature
        else:
            assert _submissions(fake_heygen) == 1  # nothing submitted by automation
            assert not any("talking" in tick for tick in ticks)
            talking = after[ids["talking"]]
            assert talking.output == before[ids["talking"]].output  # left stale, not re-run

            with sessions() as session, session.begin():  # an edit of the paid node itself
                row = session.get(Node, uuid.UUID(ids["talking"]))
                update_node(session, row, config={**row.config, "width": 640, "height": 360})
            edited, _ = _automation_ticks(sessions, resource, instance, cursor=cursor, keys=keys)
            assert edited == [set()] * TICKS
            assert _submissions(fake_heygen) == 1
            assert all_nodes(sessions, ids["pipeline"])[ids["talking"]].status == "pending"
