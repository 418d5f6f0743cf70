"""Object storage for pipeline media: one interface, an S3 and a local-directory implementation.

Keys are relative paths such as ``pipelines/<pipeline>/nodes/<node>/<process_uuid>.mp4``
(:func:`node_output_key`); a key, once written, is never overwritten. ``S3Storage`` maps a key
below its bucket prefix; ``LocalStorage`` below its root directory. Build the configured one
with :func:`storage_from_settings`.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lambdas import uris
from vidpipe_dagster.settings import Settings


class StorageError(RuntimeError):
    """A storage operation failed (bad key, missing object, ...)."""


class ObjectExistsError(StorageError):
    """A write would replace an object that already exists."""


def node_output_key(pipeline_uuid: str, node_uuid: str, process_uuid: str, ext: str) -> str:
    """The key of one execution's output: ``pipelines/<p>/nodes/<n>/<process_uuid>.<ext>``."""
    for name, value in (
        ("pipeline", pipeline_uuid),
        ("node", node_uuid),
        ("process", process_uuid),
    ):
        if not value or "/" in value or value in (".", ".."):
            raise StorageError(f"Invalid {name} id for a storage key: {value!r}")
    return f"pipelines/{pipeline_uuid}/nodes/{node_uuid}/{process_uuid}.{ext.lstrip('.')}"


def check_key(key: str) -> str:
    """Reject keys that are empty, absolute or climb out of the storage root."""
    parts = key.split("/")
    if not key or "\\" in key or any(part in ("", ".", "..") for part in parts):
        raise StorageError(f"Invalid storage key: {key!r}")
    return key


def guess_content_type(name: str) -> str:
    """The MIME type for a file name, ``application/octet-stream`` when unknown."""
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


class Storage(ABC):
    """Where media lives. Every method takes a key relative to the storage root."""

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI of ``key`` for the Lambda handlers (``s3://...`` or ``file://...``)."""

    @abstractmethod
    def lambda_destination(self, key: str) -> tuple[str, str]:
        """``(output_bucket, output_key)`` telling a handler to write ``key`` here."""

    @abstractmethod
    def key_from_uri(self, uri: str) -> str | None:
        """The key of a URI that points inside this storage, else ``None``."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored at ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The size in bytes of the object at ``key``."""

    @abstractmethod
    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> int:
        """Store the file at ``path`` under ``key``; return its size. Never overwrites."""

    @abstractmethod
    def browser_url(self, key: str, *, expires_in: int | None = None) -> str:
        """A short-lived URL a browser can open (presigned on S3, ``file://`` locally)."""

    @abstractmethod
    def media_location(self, key: str) -> str:
        """A path or URL that ffmpeg can read ``key`` from without downloading it first."""

    @abstractmethod
    def _download_key(self, key: str, dest: Path) -> None:
        """Stream the object at ``key`` to ``dest``."""

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> int:
        """Store ``data`` under ``key``; return its size. Never overwrites."""
        self._refuse_existing(key)
        return self._put_bytes(check_key(key), data, content_type or guess_content_type(key))

    @abstractmethod
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        """Write ``data`` (existence already checked)."""

    def download(self, source: str, dest: Path) -> Path:
        """Stream ``source`` to ``dest``: a key of this storage, or an s3://, file:// or
        http(s):// URI."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if "://" not in source:
            if not self.exists(source):
                raise StorageError(f"No object at key {source!r} in {self.uri_for('')}")
            self._download_key(check_key(source), dest)
            return dest
        own_key = self.key_from_uri(source)
        if own_key is not None:
            return self.download(own_key, dest)
        try:
            return uris.download(source, dest, client=self._s3_client_for_uris())
        except uris.DownloadError as error:
            raise StorageError(str(error)) from error

    def _s3_client_for_uris(self) -> Any:
        return None

    def _refuse_existing(self, key: str) -> None:
        if self.exists(check_key(key)):
            raise ObjectExistsError(f"Refusing to overwrite existing object {self.uri_for(key)}")


class S3Storage(Storage):
    """Objects in an S3 bucket (or an S3-compatible server) below an optional prefix."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        client: Any = None,
        presign_seconds: int = 900,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or uris.s3_client()
        self.presign_seconds = presign_seconds

    def object_key(self, key: str) -> str:
        """The S3 object key for a storage key (prefix applied)."""
        if key:
            check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        """``s3://bucket/prefix/key``."""
        return f"s3://{self.bucket}/{self.object_key(key)}"

    def lambda_destination(self, key: str) -> tuple[str, str]:
        """The bucket name and the prefixed object key."""
        return self.bucket, self.object_key(key)

    def key_from_uri(self, uri: str) -> str | None:
        """The storage key of ``s3://bucket/prefix/key`` in this bucket and prefix."""
        if not uri.startswith("s3://"):
            return None
        location = uris.parse_s3_uri(uri)
        if location.bucket != self.bucket:
            return None
        if not self.prefix:
            return location.key
        head = self.prefix + "/"
        return location.key[len(head) :] if location.key.startswith(head) else None

    def exists(self, key: str) -> bool:
        """HEAD the object; a 404 means absent."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        """ContentLength of the object."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            raise StorageError(f"No object at {self.uri_for(key)}: {exc}") from exc
        return int(head["ContentLength"])

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> int:
        """Upload with boto3's managed transfer (multipart above the threshold)."""
        self._refuse_existing(key)
        self.client.upload_file(
            str(path),
            self.bucket,
            self.object_key(key),
            ExtraArgs={"ContentType": content_type or guess_content_type(path.name)},
            Config=uris.transfer_config(),
        )
        return path.stat().st_size

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type
        )
        return len(data)

    def browser_url(self, key: str, *, expires_in: int | None = None) -> str:
        """A presigned GET URL valid for ``expires_in`` seconds (default from settings)."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires_in or self.presign_seconds,
        )

    def media_location(self, key: str) -> str:
        """A presigned URL: ffmpeg reads just the bytes it needs over HTTP."""
        return self.browser_url(key, expires_in=max(self.presign_seconds, 3600))

    def _download_key(self, key: str, dest: Path) -> None:
        self.client.download_file(
            self.bucket, self.object_key(key), str(dest), Config=uris.transfer_config()
        )

    def _s3_client_for_uris(self) -> Any:
        return self.client


class LocalStorage(Storage):
    """Objects as files below a root directory (the embedded default)."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``."""
        return self.root / check_key(key) if key else self.root

    def uri_for(self, key: str) -> str:
        """``file:///root/key``."""
        return self.path_for(key).as_uri()

    def lambda_destination(self, key: str) -> tuple[str, str]:
        """The root directory as a ``file://`` "bucket" and the key below it."""
        return self.root.as_uri(), check_key(key)

    def key_from_uri(self, uri: str) -> str | None:
        """The key of a ``file://`` URI below the root."""
        if not uri.startswith("file:"):
            return None
        path = uris.file_uri_to_path(uri).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return None

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self.path_for(key).is_file()

    def size(self, key: str) -> int:
        """The file size."""
        path = self.path_for(key)
        if not path.is_file():
            raise StorageError(f"No object at key {key!r} in {self.root}")
        return path.stat().st_size

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> int:
        """Copy ``path`` in (through a temporary name, then an exclusive link)."""
        self._refuse_existing(key)
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            shutil.copyfile(path, partial)
            self._publish(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target.stat().st_size

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> int:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial")
        try:
            partial.write_bytes(data)
            self._publish(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return len(data)

    def _publish(self, partial: Path, target: Path) -> None:
        """Make ``partial`` visible as ``target`` unless ``target`` appeared meanwhile."""
        try:
            os.link(partial, target)
        except FileExistsError:
            raise ObjectExistsError(f"Refusing to overwrite existing object {target}") from None

    def browser_url(self, key: str, *, expires_in: int | None = None) -> str:
        """The file's ``file://`` URL (local files do not expire)."""
        if not self.exists(key):
            raise StorageError(f"No object at key {key!r} in {self.root}")
        return self.uri_for(key)

    def media_location(self, key: str) -> str:
        """The file's path."""
        return str(self.path_for(key))

    def _download_key(self, key: str, dest: Path) -> None:
        shutil.copyfile(self.path_for(key), dest)


def storage_from_settings(settings: Settings) -> Storage:
    """The storage named by ``VIDPIPE_STORAGE_URL`` (local directory under VIDPIPE_HOME
    by default)."""
    url = settings.resolved_storage_url
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(f"VIDPIPE_STORAGE_URL needs a bucket: {url}")
        client = uris.s3_client(region=settings.aws_region, endpoint_url=settings.s3_endpoint_url)
        return S3Storage(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            client=client,
            presign_seconds=settings.presign_seconds,
        )
    if parsed.scheme == "file":
        return LocalStorage(uris.file_uri_to_path(url))
    if not parsed.scheme:
        return LocalStorage(Path(url))
    raise StorageError(f"Unsupported VIDPIPE_STORAGE_URL (use s3:// or file://): {url}")
