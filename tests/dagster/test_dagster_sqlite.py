"""The embedded instance's run and schedule storage wait out a lock held past pysqlite's 5 s
(:mod:`vidpipe_dagster.runtime.dagster_sqlite`), in the places Dagster's defaults use."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._daemon.types import DaemonHeartbeat

from vidpipe_dagster.runtime.dagster_home import EMBEDDED_DAGSTER_YAML
from vidpipe_dagster.runtime.dagster_sqlite import (
    PatientSqliteRunStorage,
    PatientSqliteScheduleStorage,
)

HELD_SECONDS = 6.0
"""Longer than pysqlite's default busy timeout (5 s), well inside the storage's 30 s."""


@pytest.fixture
def instance(tmp_path: Path, monkeypatch) -> DagsterInstance:
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(EMBEDDED_DAGSTER_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.get()


def test_the_embedded_instance_keeps_dagsters_places(instance, tmp_path: Path) -> None:
    assert isinstance(instance.run_storage, PatientSqliteRunStorage)
    assert isinstance(instance.schedule_storage, PatientSqliteScheduleStorage)
    home = tmp_path / "dagster"
    assert (home / "history" / "runs.db").exists()
    assert (home / "schedules" / "schedules.db").exists()


def test_a_write_waits_for_a_lock_held_longer_than_five_seconds(instance, tmp_path: Path) -> None:
    holder = sqlite3.connect(tmp_path / "dagster" / "history" / "runs.db", check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as a long write of another process
    release = threading.Timer(HELD_SECONDS, holder.rollback)
    release.start()
    began = time.monotonic()
    try:
        instance.add_daemon_heartbeat(
            DaemonHeartbeat(timestamp=time.time(), daemon_type="PROBE", daemon_id="p", errors=[])
        )
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - began >= HELD_SECONDS - 0.5
    assert "PROBE" in instance.get_daemon_heartbeats()
