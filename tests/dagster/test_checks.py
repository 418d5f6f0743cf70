"""The ``stored_output`` asset check on real materializations, and on broken storage."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest
from sqlalchemy import select

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.assets.checks import CHECK_NAME, check_stored_output
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.resources.dagster_resources import VidpipeResource

NODES = [
    NodeRow("script", "asset", asset={"content": "Checked output."}),
    NodeRow("voiceover", "generate-voiceover", inputs={"script": ["script"]}),
    NodeRow("clip", "render-code", config={"code": "print('hi')", "duration": 1}),
]


def location(sessions, resource: VidpipeResource) -> dg.Definitions:
    with sessions() as session:
        return build_definitions(snapshot=take_snapshot(session), resource=resource)


def evaluations(
    sessions, resource: VidpipeResource, selection: dg.AssetSelection
) -> dict[dg.AssetKey, dg.AssetCheckEvaluation]:
    """Run ``selection`` in process; the check evaluations by asset key."""
    defs = location(sessions, resource)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(defs.assets),
            selection=selection,
            instance=instance,
            resources={"vidpipe": resource},
            raise_on_error=False,
        )
    assert result.success
    found = {e.asset_key: e for e in result.get_asset_check_evaluations()}
    assert all(e.check_name == CHECK_NAME for e in found.values())
    return found


def outputs(sessions, ids) -> dict[str, dict]:
    with sessions() as session:
        rows = session.scalars(select(Node).where(Node.pipeline_id == uuid.UUID(ids["pipeline"])))
        return {row.uuid: row.output for row in rows}


def test_checks_pass_after_a_real_materialization(sessions, resource) -> None:
    ids = add_pipeline(sessions, name="checked", nodes=NODES)
    keys = {
        n.name: key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name])
        for n in NODES
    }

    found = evaluations(sessions, resource, dg.AssetSelection.assets(*keys.values()))

    assert set(found) == set(keys.values())
    assert all(e.passed for e in found.values()), [e.description for e in found.values()]
    assert found[keys["voiceover"]].metadata["duration (s)"].value > 0
    assert found[keys["clip"]].metadata["duration (s)"].value > 0
    stored = outputs(sessions, ids)
    assert found[keys["script"]].metadata["size (bytes)"].value == stored[ids["script"]]["size"]


def test_checks_follow_the_subset(sessions, resource) -> None:
    ids = add_pipeline(sessions, name="subset", nodes=NODES)
    clip = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["clip"])

    found = evaluations(sessions, resource, dg.AssetSelection.assets(clip))

    assert list(found) == [clip]
    assert found[clip].passed


def test_checks_fail_when_the_stored_object_is_removed_or_corrupt(sessions, resource) -> None:
    ids = add_pipeline(sessions, name="broken", nodes=NODES)
    keys = {
        n.name: key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids[n.name])
        for n in NODES
    }
    evaluations(sessions, resource, dg.AssetSelection.assets(*keys.values()))
    stored = outputs(sessions, ids)
    storage = resource.storage()
    storage.path_for(stored[ids["voiceover"]]["s3_key"]).unlink()
    clip_path = storage.path_for(stored[ids["clip"]]["s3_key"])
    clip_path.write_bytes(b"\0" * clip_path.stat().st_size)

    found = evaluations(sessions, resource, dg.AssetSelection.checks_for_assets(*keys.values()))

    assert set(found) == set(keys.values())
    assert found[keys["script"]].passed
    assert not found[keys["voiceover"]].passed
    assert "No object is stored" in found[keys["voiceover"]].description
    assert not found[keys["clip"]].passed
    assert "not readable video" in found[keys["clip"]].description
    assert all(e.severity == dg.AssetCheckSeverity.ERROR for e in found.values() if not e.passed)


@pytest.mark.parametrize(
    ("output", "content", "reason"),
    [
        (None, None, "no stored output"),
        ({"type": "text", "s3_key": "a/empty.txt", "size": 0}, b"", "is empty"),
        ({"type": "text", "s3_key": "a/short.txt", "size": 9}, b"12345", "recorded 9"),
        ({"type": "image", "s3_key": "a/pic.png", "size": 3}, b"png", None),
    ],
)
def test_stored_output_rules(tmp_path, output, content, reason) -> None:
    from vidpipe_dagster.resources.storage import LocalStorage

    storage = LocalStorage(tmp_path)
    if output and content is not None:
        storage.put_bytes(output["s3_key"], content)
    verdict = check_stored_output(storage, output)
    assert verdict.passed is (reason is None)
    if reason:
        assert reason in verdict.description
