"""Each remote executor against its fake provider; missing keys; the local switch."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.fakes.media import tiny_mp3, tiny_png
from vidpipe_dagster.assets import EXECUTORS
from vidpipe_dagster.assets.base import (
    AsyncSubmission,
    ExecutionContext,
    ExecutorError,
    NodeSpec,
    UpstreamNode,
)
from vidpipe_dagster.resources.lambda_invoker import LocalLambdaInvoker
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "storage")


def context(storage: LocalStorage, settings: Settings, tmp_path: Path) -> ExecutionContext:
    workdir = tmp_path / uuid.uuid4().hex[:8]
    workdir.mkdir()
    return ExecutionContext(
        storage=storage,
        invoker=LocalLambdaInvoker(),
        settings=settings,
        process_uuid=str(uuid.uuid4()),
        workdir=workdir,
        log=lambda message: None,
    )


def spec(node_type: str, **fields) -> NodeSpec:
    return NodeSpec(
        uuid=str(uuid.uuid4()), pipeline_uuid="pipe", title="Node", type=node_type, **fields
    )


def stored(storage: LocalStorage, data: bytes, *, node_type: str, media: str, ext: str):
    node_uuid = str(uuid.uuid4())
    key = f"pipelines/pipe/nodes/{node_uuid}/{uuid.uuid4()}.{ext}"
    size = storage.put_bytes(key, data)
    return UpstreamNode(
        uuid=node_uuid,
        title=node_type,
        type=node_type,
        status="completed",
        output={"type": media, "s3_key": key, "size": size, "duration": 1.0},
    )


def text_node(content: str) -> UpstreamNode:
    return UpstreamNode(
        uuid=str(uuid.uuid4()),
        title="Script",
        type="asset",
        status="completed",
        output=None,
        asset={"type": "text", "content": content},
    )


def test_elevenlabs_voiceover_is_stored_with_its_cost(
    storage, provider_settings, fake_elevenlabs, tmp_path
) -> None:
    script = text_node("Hello there, this is the narrator.")
    node = spec(
        "generate-voiceover",
        inputs={"script": [script.uuid]},
        config={"provider": "elevenlabs", "voiceId": "v1", "modelId": "eleven_flash_v2_5"},
    )
    ctx = context(storage, provider_settings, tmp_path)

    output = EXECUTORS["generate-voiceover"](node, {script.uuid: script}, ctx)

    assert output["provider"] == "elevenlabs" and output["type"] == "audio"
    assert output["s3_key"] == f"pipelines/pipe/nodes/{node.uuid}/{ctx.process_uuid}.mp3"
    assert storage.path_for(output["s3_key"]).read_bytes() == tiny_mp3()
    assert output["characters"] == len(script.asset["content"])
    assert output["cost"] == pytest.approx(len(script.asset["content"]) * 0.05 / 1000)
    assert output["duration"] == pytest.approx(1.0, abs=0.1)
    (request,) = fake_elevenlabs.requests_to("/v1/text-to-speech/v1")
    assert request.headers["xi-api-key"] == fake_elevenlabs.api_key
    assert request.json()["text"] == script.asset["content"]


def test_heygen_speaks_the_voiceovers_audio(
    storage, provider_settings, fake_heygen, tmp_path
) -> None:
    voice = stored(storage, tiny_mp3(), node_type="generate-voiceover", media="audio", ext="mp3")
    node = spec(
        "talking-head",
        inputs={"script": [voice.uuid]},
        config={"provider": "heygen", "avatarId": "avatar-1"},
    )

    outcome = EXECUTORS["talking-head"](
        node, {voice.uuid: voice}, context(storage, provider_settings, tmp_path)
    )

    assert isinstance(outcome, AsyncSubmission) and outcome.provider == "heygen"
    assert fake_heygen.jobs.get(outcome.job_id) is not None
    assert outcome.metadata["stage"] == "submitted" and outcome.metadata["voice"] == "audio"
    assert outcome.metadata["estimated_cost"] == pytest.approx(0.0667)
    body = fake_heygen.requests_to("/v3/videos", method="POST")[0].json()
    assert body["audio_url"] == storage.browser_url(voice.output["s3_key"])
    assert "script" not in body


def test_heygen_reads_a_text_script(storage, provider_settings, fake_heygen, tmp_path) -> None:
    script = text_node("Read me aloud.")
    node = spec(
        "talking-head",
        inputs={"script": [script.uuid]},
        config={"provider": "heygen", "avatarId": "a", "voiceId": "v"},
    )
    EXECUTORS["talking-head"](
        node, {script.uuid: script}, context(storage, provider_settings, tmp_path)
    )
    body = fake_heygen.requests_to("/v3/videos", method="POST")[0].json()
    assert body["script"] == "Read me aloud." and body["voice_id"] == "v"


@pytest.mark.parametrize("provider", ["veo3", "runway"])
def test_animation_submits_prompt_and_reference_image(
    storage, provider_settings, fake_veo, fake_runway, tmp_path, provider
) -> None:
    image = stored(storage, tiny_png(), node_type="asset", media="image", ext="png")
    prompt = text_node("A lighthouse in a storm")
    node = spec(
        "generate-animation",
        inputs={"prompt": [prompt.uuid], "referenceImage": [image.uuid]},
        config={"provider": provider, "duration": 8 if provider == "veo3" else 5},
    )
    upstream = {image.uuid: image, prompt.uuid: prompt}

    outcome = EXECUTORS["generate-animation"](
        node, upstream, context(storage, provider_settings, tmp_path)
    )

    assert isinstance(outcome, AsyncSubmission) and outcome.provider == provider
    if provider == "veo3":
        body = fake_veo.requests_to(":predictLongRunning")[0].json()
        instance = body["instances"][0]
        assert instance["prompt"] == "A lighthouse in a storm"
        assert instance["image"]["mimeType"] == "image/png"
        assert "/operations/" in outcome.job_id
        assert outcome.metadata["estimated_cost"] == pytest.approx(3.2)
    else:
        body = fake_runway.requests_to("/v1/image_to_video")[0].json()
        assert body["promptImage"].startswith("data:image/png;base64,")
        assert body["promptText"] == "A lighthouse in a storm"
        assert outcome.metadata["estimated_cost"] == pytest.approx(0.25)


def test_remotion_render_gets_the_config_inputs_props(
    storage, provider_settings, fake_remotion, tmp_path, monkeypatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    settings = provider_settings.model_copy(
        update={
            "remotion_function_name": fake_remotion.function_name,
            "remotion_lambda_endpoint_url": fake_remotion.url,
            "remotion_s3_endpoint_url": fake_remotion.url,
        }
    )
    props = text_node(json.dumps({"title": "Intro", "lines": 3}))
    node = spec(
        "render-code",
        inputs={"config": [props.uuid]},
        config={"provider": "remotion", "compositionId": "Main", "serveUrl": "https://site"},
    )

    outcome = EXECUTORS["render-code"](
        node, {props.uuid: props}, context(storage, settings, tmp_path)
    )

    assert isinstance(outcome, AsyncSubmission) and outcome.provider == "remotion"
    (job,) = fake_remotion.jobs.jobs.values()
    assert json.loads(job.request["inputProps"]["payload"]) == {"title": "Intro", "lines": 3}
    assert outcome.job_id.endswith(f":{job.id}")
    assert job.request["webhook"] is None

    settings = settings.model_copy(
        update={
            "webhook_base_url": "https://vidpipe.example/",
            "remotion_webhook_secret": SecretStr("s3"),
        }
    )
    EXECUTORS["render-code"](node, {props.uuid: props}, context(storage, settings, tmp_path))
    latest = list(fake_remotion.jobs.jobs.values())[-1]
    assert latest.request["webhook"] == {
        "url": "https://vidpipe.example/v1/webhooks/remotion",
        "secret": "s3",
        "customData": {"node": node.uuid},
    }


@pytest.mark.parametrize(
    ("node_type", "config", "variable"),
    [
        (
            "generate-voiceover",
            {"provider": "elevenlabs", "script": "x"},
            "VIDPIPE_ELEVENLABS_API_KEY",
        ),
        (
            "talking-head",
            {"provider": "heygen", "script": "x", "avatarId": "a"},
            "VIDPIPE_HEYGEN_API_KEY",
        ),
        ("generate-animation", {"provider": "veo3", "prompt": "x"}, "VIDPIPE_GEMINI_API_KEY"),
        ("generate-animation", {"provider": "runway", "prompt": "x"}, "VIDPIPE_RUNWAY_API_KEY"),
        ("render-code", {"provider": "remotion", "code": "x"}, "VIDPIPE_REMOTION_FUNCTION_NAME"),
    ],
)
def test_missing_key_names_the_variable(storage, tmp_path, node_type, config, variable) -> None:
    settings = Settings(
        _env_file=None,
        elevenlabs_api_key=None,
        heygen_api_key=None,
        gemini_api_key=None,
        runway_api_key=None,
        remotion_function_name=None,
    )
    with pytest.raises(ExecutorError) as caught:
        EXECUTORS[node_type](
            spec(node_type, config=config), {}, context(storage, settings, tmp_path)
        )
    assert f"{variable} is not set" in str(caught.value)


def test_providers_local_overrides_paid_providers(storage, tmp_path, fake_heygen) -> None:
    node = spec("talking-head", config={"provider": "heygen", "script": "Hi.", "avatarId": "a"})
    output = EXECUTORS["talking-head"](
        node, {}, context(storage, Settings(providers="local", heygen_api_key="k"), tmp_path)
    )
    assert output["provider"] == "local" and fake_heygen.requests == []
