"""Storage on both backends: local directory and S3 through moto's server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lambdas import uris
from lambdas.video_merger import handler as merge
from vidpipe_dagster.resources.storage import (
    LocalStorage,
    ObjectExistsError,
    S3Storage,
    Storage,
    StorageError,
    check_key,
    node_output_key,
    storage_from_settings,
)
from vidpipe_dagster.settings import Settings


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each test runs against a LocalStorage and an S3Storage."""
    if request.param == "local":
        return LocalStorage(tmp_path / "storage")
    return request.getfixturevalue("s3_storage")


def test_node_output_key() -> None:
    assert node_output_key("p", "n", "run", ".mp4") == "pipelines/p/nodes/n/run.mp4"
    with pytest.raises(StorageError):
        node_output_key("p", "../n", "run", "mp4")


@pytest.mark.parametrize("bad", ["", "/abs/key", "a/../b", "a\\b", "./a"])
def test_check_key_rejects_escaping_keys(bad: str) -> None:
    with pytest.raises(StorageError):
        check_key(bad)


def test_put_bytes_exists_size_download(storage: Storage, tmp_path: Path) -> None:
    key = "pipelines/p/nodes/n/1.txt"
    assert not storage.exists(key)

    assert storage.put_bytes(key, b"hello", content_type="text/plain") == 5

    assert storage.exists(key)
    assert storage.size(key) == 5
    assert storage.download(key, tmp_path / "out.txt").read_bytes() == b"hello"
    assert storage.download(storage.uri_for(key), tmp_path / "out2.txt").read_bytes() == b"hello"


def test_never_overwrites(storage: Storage, tmp_path: Path, red_clip: Path) -> None:
    key = "pipelines/p/nodes/n/2.mp4"
    storage.put_bytes(key, b"first")

    with pytest.raises(ObjectExistsError):
        storage.put_bytes(key, b"second")
    with pytest.raises(ObjectExistsError):
        storage.put_file(key, red_clip, content_type="video/mp4")
    assert storage.download(key, tmp_path / "x").read_bytes() == b"first"


def test_put_file_and_browser_url_serves_the_bytes(storage: Storage, red_clip: Path) -> None:
    key = "media/red.mp4"
    assert storage.put_file(key, red_clip, content_type="video/mp4") == red_clip.stat().st_size

    url = storage.browser_url(key, expires_in=120)

    if isinstance(storage, S3Storage):
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=120" in url
        response = httpx.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp4"
        body = response.content
    else:
        assert url.startswith("file://")
        body = uris.file_uri_to_path(url).read_bytes()
    assert body == red_clip.read_bytes()


def test_missing_key(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        storage.download("nope/missing.mp4", tmp_path / "x")
    with pytest.raises(StorageError):
        storage.size("nope/missing.mp4")


def test_uri_round_trip_and_foreign_uris(storage: Storage) -> None:
    key = "a/b/c.mp4"
    assert storage.key_from_uri(storage.uri_for(key)) == key
    assert storage.key_from_uri("s3://some-other-bucket/a/b/c.mp4") is None
    assert storage.key_from_uri("file:///somewhere/else/c.mp4") is None


def test_handler_writes_to_the_lambda_destination(
    storage: Storage, red_clip: Path, green_clip: Path
) -> None:
    inputs = []
    for index, clip in enumerate((red_clip, green_clip)):
        storage.put_file(f"in/{index}.mp4", clip, content_type="video/mp4")
        inputs.append(storage.uri_for(f"in/{index}.mp4"))
    bucket, object_key = storage.lambda_destination("out/merged.mp4")

    result = merge(
        {"input_videos": inputs, "output_bucket": bucket, "output_key": object_key}, None
    )

    assert result["statusCode"] == 200, result
    assert storage.exists("out/merged.mp4")
    assert storage.size("out/merged.mp4") == result["size"]


def test_media_location_is_readable_by_ffmpeg(storage: Storage, odd_clip: Path) -> None:
    from lambdas.ffmpeg import probe

    storage.put_file("m/odd.mp4", odd_clip)

    info = probe(storage.media_location("m/odd.mp4"))

    assert info.video is not None and info.video.width == 320
    assert info.duration == pytest.approx(1.5, abs=0.05)


def test_large_upload_is_multipart(
    s3_storage: S3Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uris, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    monkeypatch.setattr(uris, "MULTIPART_CHUNK", 5 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (11 * 1024 * 1024))

    s3_storage.put_file("big.bin", big)

    head = s3_storage.client.head_object(
        Bucket=s3_storage.bucket, Key=s3_storage.object_key("big.bin")
    )
    assert head["ETag"].strip('"').endswith("-3")
    assert (
        s3_storage.download("big.bin", tmp_path / "back.bin").stat().st_size == big.stat().st_size
    )


def test_https_download_goes_through_the_one_downloader(
    s3_storage: S3Storage, tmp_path: Path, red_clip: Path
) -> None:
    """Storage fetches an http(s) URL with ``lambdas.uris.download``, the handlers' own;
    an error status names the URL without its signed query."""
    s3_storage.put_file("r.mp4", red_clip)
    local = LocalStorage(tmp_path / "local")

    copy = local.download(s3_storage.browser_url("r.mp4"), tmp_path / "copy.mp4")

    assert copy.read_bytes() == red_clip.read_bytes()
    missing = s3_storage.client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_storage.bucket, "Key": "no/such/key.mp4"}
    )
    with pytest.raises(StorageError, match="HTTP 404") as raised:
        local.download(missing, tmp_path / "bad.mp4")
    assert str(raised.value) == f"GET {missing.split('?', 1)[0]} answered HTTP 404"
    assert "Signature" not in str(raised.value)
    with pytest.raises(uris.DownloadError, match="HTTP 404"):
        uris.download(missing, tmp_path / "bad.mp4")


def test_storage_from_settings(tmp_path: Path, moto_s3: str) -> None:
    default = storage_from_settings(Settings(home=tmp_path))
    assert isinstance(default, LocalStorage) and default.root == tmp_path / "storage"

    explicit = storage_from_settings(Settings(storage_url=(tmp_path / "media").as_uri()))
    assert isinstance(explicit, LocalStorage) and explicit.root == tmp_path / "media"

    s3 = storage_from_settings(
        Settings(
            storage_url="s3://bucket/some/prefix/", s3_endpoint_url=moto_s3, presign_seconds=60
        )
    )
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.presign_seconds) == ("bucket", "some/prefix", 60)
    assert s3.uri_for("k.mp4") == "s3://bucket/some/prefix/k.mp4"
    assert s3.client.meta.endpoint_url == moto_s3

    with pytest.raises(StorageError):
        storage_from_settings(Settings(storage_url="gs://bucket"))
