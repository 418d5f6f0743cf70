"""Materialization metadata: units, a link a browser opens, a thumbnail that never fails."""

from __future__ import annotations

import base64
import socket
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from lambdas.ffmpeg import probe
from tests.fixtures.media import color_at
from tests.fixtures.media_links import assert_signed_link
from vidpipe_dagster.assets.result_metadata import human_size, result_metadata
from vidpipe_dagster.resources import previews
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings

SETTINGS = Settings(media_signing_key="metadata-key", public_api_url="http://127.0.0.1:8123")
NODE = {"uuid": "n1", "type": "compose-video", "title": "Final cut"}


def _metadata(storage, output, settings=SETTINGS) -> dict:
    return result_metadata(
        output, process_uuid="p1", node=NODE, seconds=1.23456, storage=storage, settings=settings
    )


def _stored(storage, path: Path, key: str, media_type: str) -> dict:
    size = storage.put_file(key, path)
    return {"type": media_type, "s3_key": key, "size": size, "duration": 1.0, "cost": 0.25}


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (512, "512 B"), (956287, "933.9 KiB"), (5 << 30, "5.0 GiB")]
)
def test_sizes_read_in_binary_units(size: int, text: str) -> None:
    assert human_size(size) == text


def test_numbers_carry_their_units_and_the_link_is_signed(tmp_path, red_clip) -> None:
    storage = LocalStorage(tmp_path / "media")
    output = _stored(storage, red_clip, "pipelines/p/nodes/n/final.mp4", "video")
    began = time.time()
    metadata = _metadata(storage, output)

    assert metadata["duration (s)"] == dg.MetadataValue.float(1.0)
    assert metadata["cost (USD)"] == dg.MetadataValue.float(0.25)
    assert metadata["size (bytes)"] == dg.MetadataValue.int(output["size"])
    assert metadata["size"].value.endswith(("B", "KiB"))
    assert metadata["execution time (s)"] == dg.MetadataValue.float(1.235)
    assert not {"duration", "cost", "execution_seconds"} & set(metadata)
    link = metadata["link"].value
    assert_signed_link(link, output["s3_key"], SETTINGS)
    expires = int(parse_qs(urlsplit(link).query)["expires"][0])
    assert metadata["link expires"].value == float(expires)
    assert began + SETTINGS.materialization_link_seconds - 5 <= expires <= time.time() + 604800

    app = create_app(settings=SETTINGS, notify_change=lambda _u: None, storage=lambda: storage)
    with TestClient(app) as client:
        response = client.get(link.removeprefix(SETTINGS.public_api_url))
    assert response.status_code == 200
    assert response.content == red_clip.read_bytes()
    assert response.headers["content-type"] == "video/mp4"


def test_video_and_image_outputs_carry_a_small_preview(tmp_path, red_clip) -> None:
    storage = LocalStorage(tmp_path / "media")
    output = _stored(storage, red_clip, "pipelines/p/nodes/n/clip.mp4", "video")
    preview = _metadata(storage, output)["preview"]
    assert isinstance(preview, dg.MarkdownMetadataValue)
    alt, uri = preview.value.removeprefix("![").removesuffix(")").split("](")
    assert alt == "Final cut" and uri.startswith("data:image/jpeg;base64,")
    jpeg = base64.b64decode(uri.split(",", 1)[1])
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) <= previews.MAX_BYTES
    frame = tmp_path / "frame.jpg"
    frame.write_bytes(jpeg)
    assert probe(frame).video.width == previews.WIDTH
    assert color_at(frame, at=0) == "red"

    image = tmp_path / "still.jpg"
    image.write_bytes(frame.read_bytes())
    still = _stored(storage, image, "pipelines/p/nodes/n/still.jpg", "image")
    assert _metadata(storage, still)["preview"].value.startswith("![Final cut](data:image/jpeg")


def test_no_preview_for_audio_or_broken_media_and_the_node_still_gets_metadata(tmp_path) -> None:
    storage = LocalStorage(tmp_path / "media")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    output = _stored(storage, broken, "pipelines/p/nodes/n/broken.mp4", "video")
    metadata = _metadata(storage, output)
    assert "preview" not in metadata and "link" in metadata
    audio = _stored(storage, broken, "pipelines/p/nodes/n/voice.mp3", "audio")
    assert "preview" not in _metadata(storage, audio)


def test_a_preview_that_hangs_is_given_up_at_its_timeout(monkeypatch) -> None:
    monkeypatch.setattr(previews, "TIMEOUT_SECONDS", 1.0)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        held: list[socket.socket] = []
        threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
        began = time.monotonic()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/clip.mp4"
        assert previews.thumbnail(url, media_type="video", duration=4.0) is None
        assert time.monotonic() - began < 8
        for conn in held:
            conn.close()


def test_s3_links_are_presigned_for_a_bounded_time(s3_storage, red_clip) -> None:
    output = _stored(s3_storage, red_clip, "pipelines/p/nodes/n/final.mp4", "video")
    settings = SETTINGS.model_copy(update={"materialization_link_seconds": 3600})
    metadata = _metadata(s3_storage, output, settings)
    link = metadata["link"].value
    assert parse_qs(urlsplit(link).query)["X-Amz-Expires"] == ["3600"]
    response = httpx.get(link, timeout=10)
    assert response.status_code == 200 and response.content == red_clip.read_bytes()
    assert metadata["preview"].value.startswith("![Final cut](data:image/jpeg;base64,")
