"""Moving media between the handlers' temp directory and ``s3://``, ``file://`` or ``https://``.

S3 goes through boto3. The endpoint comes from ``VIDPIPE_S3_ENDPOINT_URL`` (or boto3's own
``AWS_ENDPOINT_URL``) so the same code talks to AWS, MinIO or moto. Downloads stream to disk
and uploads of large files are multipart (boto3's managed transfer).

An output destination is a bucket and a key, as in the seed's events. A bucket written as a
``file://`` URI names a local directory instead: the embedded default, where the key is a
path below that directory.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

MULTIPART_THRESHOLD = 64 * 1024 * 1024
MULTIPART_CHUNK = 16 * 1024 * 1024
_COPY_CHUNK = 1024 * 1024


class UriError(ValueError):
    """A URI that is not ``s3://bucket/key``, ``file:///path`` or ``http(s)://...``."""


class DownloadError(OSError):
    """An http(s) URL that answered an error status."""


@dataclass(frozen=True)
class S3Location:
    """A bucket and key parsed from ``s3://bucket/key``."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        """The location as ``s3://bucket/key``."""
        return f"s3://{self.bucket}/{self.key}"


def parse_s3_uri(uri: str) -> S3Location:
    """Split ``s3://bucket/key`` into bucket and key."""
    parsed = urlparse(uri)
    key = parsed.path.lstrip("/")
    if parsed.scheme != "s3" or not parsed.netloc or not key:
        raise UriError(f"Not an s3://bucket/key URI: {uri}")
    return S3Location(bucket=parsed.netloc, key=key)


def file_uri_to_path(uri: str) -> Path:
    """The local path of a ``file://`` URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost"):
        raise UriError(f"Not a file:/// URI: {uri}")
    return Path(unquote(parsed.path))


def local_path(uri: str) -> Path | None:
    """The path a ``file://`` URI points to, or ``None`` for a remote URI."""
    return file_uri_to_path(uri) if uri.startswith("file:") else None


def s3_client(*, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 S3 client for the configured endpoint (path-style addressing, SigV4)."""
    import boto3
    from botocore.config import Config

    endpoint = (
        endpoint_url
        or os.environ.get("VIDPIPE_S3_ENDPOINT_URL")
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )
    region_name = (
        region
        or os.environ.get("VIDPIPE_AWS_REGION")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
    return boto3.client("s3", region_name=region_name, endpoint_url=endpoint, config=config)


def transfer_config() -> Any:
    """Multipart settings for boto3's managed uploads and downloads."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNK
    )


def download(uri: str, dest: Path, *, client: Any = None) -> Path:
    """Fetch ``uri`` (``s3://``, ``file://`` or ``http(s)://``) to ``dest``, streaming."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    scheme = urlparse(uri).scheme
    if scheme == "s3":
        location = parse_s3_uri(uri)
        (client or s3_client()).download_file(
            location.bucket, location.key, str(dest), Config=transfer_config()
        )
    elif scheme == "file":
        source = file_uri_to_path(uri)
        if not source.is_file():
            raise FileNotFoundError(f"No such file: {uri}")
        shutil.copyfile(source, dest)
    elif scheme in ("http", "https"):
        _http_download(uri, dest)
    else:
        raise UriError(f"Unsupported URI (expected s3://, file:// or https://): {uri}")
    return dest


def _http_download(url: str, dest: Path) -> None:
    """Stream an http(s) URL to ``dest``, following redirects; an error status raises
    :class:`DownloadError` naming the URL without its query (which may hold a signature)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:
            shutil.copyfileobj(response, out, _COPY_CHUNK)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"GET {redact(url)} answered HTTP {error.code}") from None


def redact(url: str) -> str:
    """A URL without its query string (which may hold a signature)."""
    return url.split("?", 1)[0]


def suffix_of(uri: str, default: str) -> str:
    """The file extension of a URI's path (``".mp4"``), or ``default`` when it has none."""
    suffix = Path(urlparse(uri).path).suffix
    return suffix if 1 < len(suffix) <= 6 else default


def readable_path(uri: str, dest: Path, *, client: Any = None) -> Path:
    """A local path holding ``uri``: the file itself for ``file://``, else a download."""
    path = local_path(uri)
    if path is not None:
        if not path.is_file():
            raise FileNotFoundError(f"No such file: {uri}")
        return path
    return download(uri, dest, client=client)


def upload(path: Path, *, bucket: str, key: str, content_type: str, client: Any = None) -> str:
    """Store ``path`` at ``bucket``/``key`` and return the URI written.

    ``bucket`` is an S3 bucket name or a ``file://`` directory. Local writes go through a
    temporary name and a rename, so a reader never sees a half-written file.
    """
    if bucket.startswith("file:"):
        target = file_uri_to_path(bucket) / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            try:
                os.link(path, partial)
            except OSError:
                shutil.copyfile(path, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target.as_uri()
    (client or s3_client()).upload_file(
        str(path),
        bucket,
        key,
        ExtraArgs={"ContentType": content_type},
        Config=transfer_config(),
    )
    return f"s3://{bucket}/{key}"
