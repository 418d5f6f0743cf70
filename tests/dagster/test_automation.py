"""Eager automation: downstream nodes follow an upstream that changed, nothing else runs.

The conditions are evaluated with ``dagster.evaluate_automation_conditions``, the work the
daemon's ``vidpipe_automation`` sensor does on each tick.
"""

from __future__ import annotations

import uuid

import dagster as dg

from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.naming import resolve_names
from vidpipe_dagster.orchestration.sensors import automation_sensor
from vidpipe_dagster.resources.dagster_resources import VidpipeResource


def _snapshot(voice_text: str) -> dict:
    ids = {name: str(uuid.uuid5(uuid.NAMESPACE_URL, name)) for name in ("p", "s", "v", "o")}
    nodes = [
        {"uuid": ids["s"], "title": "Script", "type": "asset", "inputs": {},
         "asset": {"type": "text", "text": "Hello."}},
        {"uuid": ids["v"], "title": "Voice", "type": "generate-voiceover",
         "inputs": {"script": ids["s"]}, "config": {"voice": voice_text}},
        {"uuid": ids["o"], "title": "Other", "type": "asset", "inputs": {},
         "asset": {"type": "text", "text": "Unrelated."}},
    ]  # fmt: skip
    return {"pipelines": [{"uuid": ids["p"], "title": "P", "config": {}, "nodes": nodes}]}


def _keys(snapshot: dict) -> dict[str, dg.AssetKey]:
    pipeline = snapshot["pipelines"][0]
    return {
        node["title"]: node_asset_key(resolve_names(pipeline), node["uuid"])
        for node in pipeline["nodes"]
    }


def _defs(snapshot: dict, tmp_path) -> dg.Definitions:
    resource = VidpipeResource(database_url="sqlite://", home=str(tmp_path), providers="local")
    return build_definitions(snapshot=snapshot, resource=resource)


def test_the_automation_sensor_starts_running_over_every_asset(tmp_path) -> None:
    assert automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    defs = _defs(_snapshot("calm"), tmp_path)
    repo = defs.get_repository_def()
    sensor = repo.get_sensor_def("vidpipe_automation")
    targeted = sensor.asset_selection.resolve(repo.asset_graph)
    assert targeted == set(_keys(_snapshot("calm")).values())


def test_an_updated_upstream_requests_its_downstream_and_nothing_else(tmp_path) -> None:
    snapshot = _snapshot("calm")
    keys = _keys(snapshot)
    defs = _defs(snapshot, tmp_path)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0  # a new pipeline does not start by itself

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=keys["Script"]))
        second = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
        assert second.get_requested_partitions(keys["Voice"]) == {None}
        assert second.total_requested == 1  # not the script again, not the unrelated node

        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=keys["Voice"]))
        third = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=second.cursor
        )
        assert third.total_requested == 0


def test_a_structure_change_requests_the_changed_node(tmp_path) -> None:
    keys = _keys(_snapshot("calm"))
    with dg.instance_for_test() as instance:
        defs = _defs(_snapshot("calm"), tmp_path)
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        for key in keys.values():
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        settled = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=first.cursor
        )
        # the script's materialization makes the voice follow once; let that run happen
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=keys["Voice"]))
        settled = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, cursor=settled.cursor
        )
        assert settled.total_requested == 0

        edited = _defs(_snapshot("bright"), tmp_path)  # the voice node's config changed
        result = dg.evaluate_automation_conditions(
            defs=edited, instance=instance, cursor=settled.cursor
        )
        assert result.get_requested_partitions(keys["Voice"]) == {None}
        assert result.total_requested == 1
