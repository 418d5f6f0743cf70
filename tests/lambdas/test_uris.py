"""URI helpers: parsing, local and S3 transfers against moto's server."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import uris


def test_parse_s3_uri() -> None:
    assert uris.parse_s3_uri("s3://bucket/a/b.mp4") == uris.S3Location("bucket", "a/b.mp4")
    for bad in ("s3://bucket", "s3:///key", "file:///x"):
        with pytest.raises(uris.UriError):
            uris.parse_s3_uri(bad)


def test_file_uri_round_trip_with_spaces(tmp_path: Path) -> None:
    path = tmp_path / "a dir" / "clip #1.mp4"
    assert uris.file_uri_to_path(path.as_uri()) == path


def test_upload_to_a_file_bucket_and_download_back(tmp_path: Path, red_clip: Path) -> None:
    root = tmp_path / "root"
    written = uris.upload(red_clip, bucket=root.as_uri(), key="x/y.mp4", content_type="video/mp4")

    assert written == (root / "x/y.mp4").as_uri()
    copy = uris.download(written, tmp_path / "copy.mp4")
    assert copy.read_bytes() == red_clip.read_bytes()
    assert [p.name for p in (root / "x").iterdir()] == ["y.mp4"]


def test_s3_upload_download_and_presigned_http(
    tmp_path: Path, red_clip: Path, s3_bucket: str, s3_client
) -> None:
    written = uris.upload(red_clip, bucket=s3_bucket, key="uris/red.mp4", content_type="video/mp4")
    assert written == f"s3://{s3_bucket}/uris/red.mp4"

    via_s3 = uris.download(written, tmp_path / "s3.mp4")
    url = s3_client.generate_presigned_url(
        "get_object", Params={"Bucket": s3_bucket, "Key": "uris/red.mp4"}, ExpiresIn=60
    )
    via_http = uris.download(url, tmp_path / "http.mp4")

    assert via_s3.read_bytes() == red_clip.read_bytes() == via_http.read_bytes()


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(uris.UriError):
        uris.download("ftp://host/x.mp4", tmp_path / "x.mp4")
