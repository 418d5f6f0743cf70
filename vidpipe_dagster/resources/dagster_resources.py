"""The Dagster resource that gives assets and sensors vidpipe's settings, database, media
and providers.

One resource, ``vidpipe``, so a compiled pipeline needs a single resource key. Its fields
override settings (tests point it at their own database and storage); anything unset comes
from ``VIDPIPE_*`` environment variables, read when the resource is used, never at import.
What is expensive to build is built once per process and settings value and reused: the
database engine, the storage (an S3 client costs ~11 ms) and the provider clients
(:meth:`VidpipeResource.provider_clients`, closed when the process exits).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.resources.lambda_invoker import LambdaInvoker, invoker_from_settings
from vidpipe_dagster.resources.providers.clients import ProviderClients, shared_clients
from vidpipe_dagster.resources.storage import Storage, storage_from_settings
from vidpipe_dagster.settings import Settings, get_settings


class VidpipeResource(dg.ConfigurableResource):
    """Settings, pipeline database, lifecycle, storage and Lambda invoker for Dagster code."""

    database_url: str | None = None
    storage_url: str | None = None
    home: str | None = None
    providers: str | None = None

    _engines: ClassVar[dict[str, Engine]] = {}
    _engines_lock: ClassVar[threading.Lock] = threading.Lock()
    _storages: ClassVar[dict[tuple[Any, ...], Storage]] = {}

    def settings(self) -> Settings:
        """The process settings with this resource's overrides applied."""
        base = get_settings()
        overrides: dict[str, Any] = {
            name: value
            for name, value in (
                ("database_url", self.database_url),
                ("storage_url", self.storage_url),
                ("home", Path(self.home) if self.home is not None else None),
                ("providers", self.providers),
            )
            if value is not None
        }
        return base.model_copy(update=overrides) if overrides else base

    def engine(self) -> Engine:
        """One engine per database URL and process, shared by every use of the resource."""
        url = self.settings().resolved_database_url
        with self._engines_lock:
            engine = self._engines.get(url)
            if engine is None:
                engine = make_engine(url, **({} if url.startswith("sqlite") else {"pool_size": 4}))
                self._engines[url] = engine
        return engine

    def sessions(self) -> sessionmaker[Session]:
        """A session factory on the pipeline database."""
        return make_sessionmaker(self.engine())

    def lifecycle(self) -> Lifecycle:
        """The execution lifecycle over the pipeline database."""
        return Lifecycle(self.sessions())

    def storage(self) -> Storage:
        """The object storage (S3 or a local directory) named by ``storage_url``, one per
        process and storage configuration."""
        settings = self.settings()
        key = (
            settings.resolved_storage_url,
            settings.s3_endpoint_url,
            settings.aws_region,
            settings.presign_seconds,
            os.environ.get("AWS_ENDPOINT_URL_S3"),
            os.environ.get("AWS_ENDPOINT_URL"),
        )
        storage = self._storages.get(key)
        if storage is None:
            with self._engines_lock:
                storage = self._storages.get(key)
                if storage is None:
                    storage = storage_from_settings(settings)
                    self._storages[key] = storage
        return storage

    def provider_clients(self) -> ProviderClients:
        """The provider clients for these settings, built once per process and reused."""
        return shared_clients(self.settings())

    def invoker(self) -> LambdaInvoker:
        """The Lambda invoker (AWS or in-process) chosen by ``lambda_mode``."""
        return invoker_from_settings(self.settings())
