"""AI node executors through the local provider: text inputs, durations, provider seam."""

from __future__ import annotations

import json
import uuid

import pytest

from lambdas.ffmpeg import probe
from tests.assets.conftest import node
from vidpipe_dagster.assets import EXECUTORS
from vidpipe_dagster.assets.base import ExecutorError, UpstreamNode
from vidpipe_dagster.resources.providers.local import reading_seconds
from vidpipe_dagster.settings import Settings

SCRIPT = "Loops repeat work until a condition says stop."


def _text_asset(content: object, title: str = "Script") -> UpstreamNode:
    return UpstreamNode(
        uuid=f"text-{uuid.uuid4().hex[:6]}",
        title=title,
        type="asset",
        status="completed",
        output={"type": "text", "s3_key": "unused.txt", "size": 1, "duration": 0.0},
        asset={"type": "text", "content": content},
    )


def _stored_text(storage, text: str, title: str = "Stored script") -> UpstreamNode:
    key = f"texts/{uuid.uuid4().hex}.txt"
    size = storage.put_bytes(key, text.encode())
    return UpstreamNode(
        uuid=f"stored-{uuid.uuid4().hex[:6]}",
        title=title,
        type="generate-voiceover",
        status="completed",
        output={"type": "text", "s3_key": key, "size": size, "duration": 0.0},
    )


def test_talking_head_from_a_text_asset(storage, make_ctx) -> None:
    script = _text_asset(SCRIPT)
    spec = node("talking-head", inputs={"script": [script.uuid]})

    output = EXECUTORS["talking-head"](spec, {script.uuid: script}, make_ctx(storage))

    info = probe(storage.path_for(output["s3_key"]))
    assert (info.video.width, info.video.height) == (1280, 720)
    assert info.audio is not None
    assert output["duration"] == pytest.approx(reading_seconds(SCRIPT), abs=0.1)
    assert (output["type"], output["provider"], output["cost"]) == ("video", "local", 0.0)


def test_voiceover_reads_a_stored_text_file(storage, make_ctx) -> None:
    text = " ".join(["word"] * 15)
    source = _stored_text(storage, text)
    spec = node("generate-voiceover", inputs={"script": source.uuid})

    output = EXECUTORS["generate-voiceover"](spec, {source.uuid: source}, make_ctx(storage))

    assert output["type"] == "audio" and output["s3_key"].endswith(".mp3")
    assert output["duration"] == pytest.approx(6.0, abs=0.1)
    assert output["size"] == storage.size(output["s3_key"])


def test_voiceover_from_config_script(storage, make_ctx) -> None:
    spec = node("generate-voiceover", config={"script": "one two three four five"})

    output = EXECUTORS["generate-voiceover"](spec, {}, make_ctx(storage))

    assert output["duration"] == pytest.approx(2.0, abs=0.1)


def test_missing_script_says_what_to_do(storage, make_ctx) -> None:
    spec = node("talking-head", title="Presenter")

    with pytest.raises(ExecutorError) as caught:
        EXECUTORS["talking-head"](spec, {}, make_ctx(storage))
    assert "'Presenter'" in str(caught.value)
    assert "connect a text node to input 'script' or set config.script" in str(caught.value)


def test_text_upstream_without_output_names_it(storage, make_ctx) -> None:
    pending = UpstreamNode(
        uuid="s-1", title="Draft script", type="asset", status="failed", output=None
    )
    spec = node("generate-voiceover", inputs={"script": ["s-1"]})

    with pytest.raises(ExecutorError, match=r"'Draft script' \(s-1\).*status failed"):
        EXECUTORS["generate-voiceover"](spec, {"s-1": pending}, make_ctx(storage))


def test_animation_lasts_config_duration(storage, make_ctx) -> None:
    prompt = _text_asset("A robot painting a sunset", title="Prompt")
    spec = node("generate-animation", inputs={"prompt": [prompt.uuid]}, config={"duration": 1})

    output = EXECUTORS["generate-animation"](spec, {prompt.uuid: prompt}, make_ctx(storage))

    assert output["duration"] == pytest.approx(1.0, abs=0.05)


def test_animation_rejects_a_bad_duration(storage, make_ctx) -> None:
    spec = node("generate-animation", config={"prompt": "x", "duration": "long"})

    with pytest.raises(ExecutorError, match="config.duration must be a number"):
        EXECUTORS["generate-animation"](spec, {}, make_ctx(storage))


def test_render_code_from_a_json_asset(storage, make_ctx) -> None:
    source = _text_asset({"code": "for i in range(3):\n    print(i)", "language": "python"})
    spec = node("render-code", inputs={"config": [source.uuid]}, config={"duration": 1.5})

    output = EXECUTORS["render-code"](spec, {source.uuid: source}, make_ctx(storage))

    assert output["type"] == "video"
    assert output["duration"] == pytest.approx(1.5, abs=0.05)


def test_render_code_needs_code(storage, make_ctx) -> None:
    with pytest.raises(ExecutorError, match="has no code"):
        EXECUTORS["render-code"](node("render-code"), {}, make_ctx(storage))


def test_unavailable_provider_points_at_the_local_switch(storage, make_ctx) -> None:
    spec = node("generate-animation", title="Hero shot", config={"prompt": "x", "provider": "veo3"})

    with pytest.raises(ExecutorError) as caught:
        EXECUTORS["generate-animation"](spec, {}, make_ctx(storage))
    message = str(caught.value)
    assert "provider 'veo3'" in message and "'Hero shot'" in message
    assert "VIDPIPE_PROVIDERS=local" in message


def test_providers_local_forces_the_local_renderer(storage, make_ctx) -> None:
    spec = node("generate-voiceover", config={"script": "short text", "provider": "elevenlabs"})

    output = EXECUTORS["generate-voiceover"](
        spec, {}, make_ctx(storage, Settings(providers="local"))
    )

    assert output["provider"] == "local"


def test_multiple_script_inputs_are_joined_in_order(storage, make_ctx) -> None:
    first, second = _text_asset("one two three"), _text_asset("four five six seven")
    spec = node("generate-voiceover", inputs={"script": [first.uuid, second.uuid]})
    upstream = {first.uuid: first, second.uuid: second}

    output = EXECUTORS["generate-voiceover"](spec, upstream, make_ctx(storage))

    assert output["characters"] == len("one two three\n\nfour five six seven")
    assert output["duration"] == pytest.approx(reading_seconds("a b c d e f g"), abs=0.1)


def test_json_text_content_is_serialised(storage, make_ctx) -> None:
    source = _text_asset(["not", "a", "string"])
    spec = node("generate-voiceover", inputs={"script": [source.uuid]})

    output = EXECUTORS["generate-voiceover"](spec, {source.uuid: source}, make_ctx(storage))

    assert output["characters"] == len(json.dumps(["not", "a", "string"]))
