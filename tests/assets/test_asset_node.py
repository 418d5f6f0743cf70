"""asset executor: inline text, storage keys, external URIs, type checks, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.assets.conftest import PIPELINE, node
from vidpipe_dagster.assets import EXECUTORS
from vidpipe_dagster.assets.asset_node import execute
from vidpipe_dagster.assets.base import ExecutorError


def test_registry_covers_every_node_type() -> None:
    assert set(EXECUTORS) == {
        "asset", "merge-videos", "mix-audio", "compose-video",
        "talking-head", "generate-animation", "generate-voiceover", "render-code",
    }  # fmt: skip


def test_inline_text_is_stored_as_txt(storage, make_ctx) -> None:
    spec = node("asset", asset={"type": "text", "content": "Hello, world."})
    ctx = make_ctx(storage)

    output = execute(spec, {}, ctx)

    expected_key = f"pipelines/{PIPELINE}/nodes/{spec.uuid}/{ctx.process_uuid}.txt"
    assert output == {
        "type": "text",
        "s3_key": expected_key,
        "size": 13,
        "duration": 0.0,
        "content_type": "text/plain",
    }
    assert storage.path_for(expected_key).read_text() == "Hello, world."


def test_inline_json(storage, make_ctx) -> None:
    spec = node("asset", asset={"type": "json", "content": {"code": "print(1)"}})

    output = execute(spec, {}, make_ctx(storage))

    assert output["s3_key"].endswith(".json") and output["type"] == "text"
    assert json.loads(storage.path_for(output["s3_key"]).read_text()) == {"code": "print(1)"}

    with pytest.raises(ExecutorError, match="not valid JSON"):
        execute(node("asset", asset={"type": "json", "content": "{nope"}), {}, make_ctx(storage))


def test_storage_key_is_used_in_place_and_measured(storage, make_ctx, odd_clip: Path) -> None:
    storage.put_file("uploads/odd.mp4", odd_clip)
    spec = node("asset", asset={"type": "video", "source": "uploads/odd.mp4"})

    output = execute(spec, {}, make_ctx(storage))

    assert output["s3_key"] == "uploads/odd.mp4"
    assert output["type"] == "video"
    assert output["duration"] == pytest.approx(1.5, abs=0.05)
    assert (output["width"], output["height"]) == (320, 180)
    assert output["size"] == odd_clip.stat().st_size


def test_external_file_is_copied_under_the_process_key(storage, make_ctx, tone_audio) -> None:
    spec = node("asset", asset={"type": "audio", "source": tone_audio.as_uri()})
    ctx = make_ctx(storage)

    output = execute(spec, {}, ctx)

    assert output["s3_key"] == f"pipelines/{PIPELINE}/nodes/{spec.uuid}/{ctx.process_uuid}.m4a"
    assert output["type"] == "audio"
    assert output["duration"] == pytest.approx(0.5, abs=0.05)
    assert storage.path_for(output["s3_key"]).read_bytes() == tone_audio.read_bytes()


def test_https_source_is_fetched(storage, make_ctx, s3_storage, red_clip: Path) -> None:
    s3_storage.put_file("remote/red.mp4", red_clip)
    url = s3_storage.browser_url("remote/red.mp4")
    spec = node("asset", asset={"type": "video", "source": url})

    output = execute(spec, {}, make_ctx(storage))

    assert output["duration"] == pytest.approx(1.0, abs=0.05)
    assert storage.path_for(output["s3_key"]).read_bytes() == red_clip.read_bytes()


def test_asset_on_s3_storage(s3_storage, make_ctx, red_clip: Path, still_image: Path) -> None:
    s3_storage.put_file("up/red.mp4", red_clip)
    by_uri = node("asset", asset={"type": "video", "source": s3_storage.uri_for("up/red.mp4")})
    image = node("asset", asset={"type": "image", "source": still_image.as_uri()})

    video_output = execute(by_uri, {}, make_ctx(s3_storage))
    image_output = execute(image, {}, make_ctx(s3_storage))

    assert video_output["s3_key"] == "up/red.mp4"
    assert video_output["duration"] == pytest.approx(1.0, abs=0.05)
    assert image_output["type"] == "image" and image_output["duration"] == 0.0
    assert (image_output["width"], image_output["height"]) == (64, 36)
    assert s3_storage.exists(image_output["s3_key"])


@pytest.mark.parametrize(
    ("asset", "message"),
    [
        (None, "has nothing to provide: set asset.source"),
        ({"type": "video"}, "has nothing to provide"),
        ({"type": "movie", "source": "x.mp4"}, "asset.type 'movie' is not one of"),
        ({"type": "video", "source": "missing/key.mp4"}, "nothing is stored at 'missing/key.mp4'"),
        ({"type": "video", "content": "text"}, "asset.content holds inline text"),
        ({"source": "blob"}, "set asset.type"),
        ({"type": "video", "source": "ftp://host/x.mp4"}, "is not a storage key or an s3://"),
        ({"type": "video", "source": "file:///no/such/file.mp4"}, "cannot fetch"),
    ],
)
def test_unusable_assets_name_the_node(storage, make_ctx, asset, message: str) -> None:
    spec = node("asset", title="Intro clip", asset=asset)

    with pytest.raises(ExecutorError) as caught:
        execute(spec, {}, make_ctx(storage))
    assert message in str(caught.value)
    assert f"'Intro clip' ({spec.uuid})" in str(caught.value)


@pytest.mark.parametrize(
    ("fixture", "declared", "message"),
    [
        ("silent_clip", "audio", "has no audio stream"),
        ("still_image", "video", "is a still image"),
        ("tone_audio", "image", "has no picture"),
        ("corrupt_clip", "video", "the media is unreadable"),
    ],
)
def test_media_must_match_its_declared_type(
    storage, make_ctx, request, fixture: str, declared: str, message: str
) -> None:
    path = request.getfixturevalue(fixture)
    spec = node("asset", asset={"type": declared, "source": path.as_uri()})

    with pytest.raises(ExecutorError, match=message):
        execute(spec, {}, make_ctx(storage))
    stored = list(storage.root.rglob("*")) if storage.root.exists() else []
    assert [path for path in stored if path.is_file()] == []
