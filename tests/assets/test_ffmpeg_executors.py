"""merge-videos, mix-audio and compose-video executors through the local invoker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.assets.conftest import PIPELINE, node
from tests.fixtures.media import color_at, mean_volume
from vidpipe_dagster.assets import EXECUTORS
from vidpipe_dagster.assets.base import ExecutorError, UpstreamNode
from vidpipe_dagster.assets.inputs import input_uuids
from vidpipe_dagster.resources.lambda_invoker import LocalLambdaInvoker
from vidpipe_dagster.resources.storage import Storage


def _upstream(*nodes: UpstreamNode) -> dict[str, UpstreamNode]:
    return {item.uuid: item for item in nodes}


def test_merge_keeps_segment_order(
    storage, make_ctx, stored_video, red_clip: Path, green_clip: Path, blue_clip: Path
) -> None:
    clips = [stored_video(blue_clip, "Blue"), stored_video(red_clip, "Red"),
             stored_video(green_clip, "Green")]  # fmt: skip
    spec = node("merge-videos", inputs={"segments": [c.uuid for c in clips]})
    ctx = make_ctx(storage)

    output = EXECUTORS["merge-videos"](spec, _upstream(*clips), ctx)

    assert output["s3_key"] == f"pipelines/{PIPELINE}/nodes/{spec.uuid}/{ctx.process_uuid}.mp4"
    assert output["type"] == "video" and output["cost"] == 0.0
    assert output["duration"] == pytest.approx(4.0, abs=0.1)
    path = storage.path_for(output["s3_key"])
    assert output["size"] == path.stat().st_size
    assert [color_at(path, at=t) for t in (1.0, 2.5, 3.5)] == ["blue", "red", "green"]


def test_merge_on_s3_storage(s3_storage, make_ctx, red_clip: Path, odd_clip: Path) -> None:
    ups = []
    for index, clip in enumerate((red_clip, odd_clip)):
        key = f"in/{index}.mp4"
        s3_storage.put_file(key, clip)
        ups.append(
            UpstreamNode(
                uuid=f"u{index}", title=f"Clip {index}", type="asset", status="completed",
                output={"type": "video", "s3_key": key, "size": 1, "duration": 1.0},
            )
        )  # fmt: skip
    spec = node("merge-videos", inputs={"segments": ["u0", "u1"]}, config={"transition": "fade"})

    output = EXECUTORS["merge-videos"](spec, _upstream(*ups), make_ctx(s3_storage))

    assert s3_storage.exists(output["s3_key"])
    assert s3_storage.size(output["s3_key"]) == output["size"]
    assert output["duration"] == pytest.approx(1.0 + 1.5 - 0.5, abs=0.1)


def test_upstream_without_output_names_it(storage, make_ctx, stored_video, red_clip) -> None:
    ready = stored_video(red_clip, "Intro")
    pending = UpstreamNode(
        uuid="outro-1", title="Outro", type="talking-head", status="pending", output=None
    )
    spec = node("merge-videos", title="Final cut", inputs={"segments": [ready.uuid, "outro-1"]})

    with pytest.raises(ExecutorError) as caught:
        EXECUTORS["merge-videos"](spec, _upstream(ready, pending), make_ctx(storage))
    message = str(caught.value)
    assert "'Outro' (outro-1)" in message and "status pending" in message
    assert "run 'Outro' first" in message and "'Final cut'" in message


def test_upstream_of_the_wrong_type_names_it(storage, make_ctx, stored_video, tone_audio) -> None:
    video = stored_video(tone_audio, "Music", media_type="audio")
    spec = node("merge-videos", inputs={"segments": [video.uuid, video.uuid]})

    with pytest.raises(ExecutorError, match=r"'Music' \(.*\) produced audio but input 'segments'"):
        EXECUTORS["merge-videos"](spec, _upstream(video), make_ctx(storage))


def test_dangling_and_missing_inputs(storage, make_ctx, stored_video, red_clip) -> None:
    clip = stored_video(red_clip, "A")
    dangling = node("merge-videos", inputs={"segments": [clip.uuid, "gone"]})
    with pytest.raises(ExecutorError, match="references node gone, which does not exist"):
        EXECUTORS["merge-videos"](dangling, _upstream(clip), make_ctx(storage))

    empty = node("mix-audio", inputs={"video": [], "audio": [clip.uuid]})
    with pytest.raises(ExecutorError, match="needs input 'video'"):
        EXECUTORS["mix-audio"](empty, _upstream(clip), make_ctx(storage))

    single = node("merge-videos", inputs={"segments": clip.uuid})
    assert input_uuids(single, "segments") == [clip.uuid]
    with pytest.raises(ExecutorError, match="needs at least 2 segments"):
        EXECUTORS["merge-videos"](single, _upstream(clip), make_ctx(storage))


def test_lambda_failure_becomes_an_executor_error(
    storage, make_ctx, stored_video, red_clip, corrupt_clip
) -> None:
    good, bad = stored_video(red_clip, "Good"), stored_video(corrupt_clip, "Broken")
    spec = node("merge-videos", title="Merge", inputs={"segments": [good.uuid, bad.uuid]})

    with pytest.raises(ExecutorError) as caught:
        EXECUTORS["merge-videos"](spec, _upstream(good, bad), make_ctx(storage))
    message = str(caught.value)
    assert "video_merger failed: Lambda returned error:" in message
    assert "Invalid data found when processing input" in message


def test_handler_that_writes_nothing_is_caught(storage, make_ctx, stored_video, red_clip) -> None:
    clips = [stored_video(red_clip, "A"), stored_video(red_clip, "B")]
    spec = node("merge-videos", inputs={"segments": [c.uuid for c in clips]})
    ctx = make_ctx(storage)
    ctx.invoker = LocalLambdaInvoker(
        {"video_merger": lambda event, context: {"s3_key": "x", "size": 1, "statusCode": 200}}
    )

    with pytest.raises(ExecutorError, match="reported success but wrote no file"):
        EXECUTORS["merge-videos"](spec, _upstream(*clips), ctx)


def test_mix_audio_replaces_the_track(
    storage, make_ctx, stored_video, red_clip, tone_audio
) -> None:
    video = stored_video(red_clip, "Video")
    audio = stored_video(tone_audio, "Voice", media_type="audio")
    spec = node("mix-audio", inputs={"video": [video.uuid], "audio": [audio.uuid]},
                config={"mode": "replace", "volume": 1.0})  # fmt: skip

    output = EXECUTORS["mix-audio"](spec, _upstream(video, audio), make_ctx(storage))

    path = storage.path_for(output["s3_key"])
    assert output["duration"] == pytest.approx(1.0, abs=0.06)
    assert mean_volume(path, start=0.65, duration=0.3) < -60


def test_compose_video_geometry(storage, make_ctx, stored_video, odd_clip, red_clip) -> None:
    background, overlay = stored_video(odd_clip, "Screen"), stored_video(red_clip, "Face")
    spec = node(
        "compose-video",
        inputs={"background": [background.uuid], "overlay": [overlay.uuid]},
        config={"position": "top-right", "scale": 0.5, "offsetX": 0, "offsetY": 0},
    )

    output = EXECUTORS["compose-video"](spec, _upstream(background, overlay), make_ctx(storage))

    path = storage.path_for(output["s3_key"])
    assert output["duration"] == pytest.approx(1.5, abs=0.07)
    assert color_at(path, at=0.5, x=240, y=40) == "red"
    assert color_at(path, at=0.5, x=80, y=40) == "magenta"
    assert color_at(path, at=0.5, x=240, y=140) == "magenta"


def test_outputs_are_never_overwritten(storage: Storage, make_ctx, stored_video, red_clip) -> None:
    clips = [stored_video(red_clip, "A"), stored_video(red_clip, "B")]
    spec = node("merge-videos", inputs={"segments": [c.uuid for c in clips]})
    ctx = make_ctx(storage)
    first = EXECUTORS["merge-videos"](spec, _upstream(*clips), ctx)

    with pytest.raises(ExecutorError, match="already exists"):
        EXECUTORS["merge-videos"](spec, _upstream(*clips), ctx)
    assert storage.size(first["s3_key"]) == first["size"]
