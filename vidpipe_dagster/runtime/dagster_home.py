"""The embedded Dagster instance: ``DAGSTER_HOME`` under ``VIDPIPE_HOME`` with SQLite storage."""

from __future__ import annotations

import os
from pathlib import Path

from vidpipe_dagster.settings import Settings

EMBEDDED_DAGSTER_YAML = """\
# Embedded Dagster instance for vidpipe: SQLite storage under this directory.
telemetry:
  enabled: false
# The daemon takes queued runs off the queue every second (Dagster's default is 5 s), so a
# run starts about a second after the editor's execute.
run_queue:
  max_concurrent_runs: 4
  dequeue_interval_seconds: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 5
sensors:
  use_threads: true
  num_workers: 4
# Dagster's SQLite run and schedule storage, in their usual places, waiting up to 30 s for a
# lock as its event log does (vidpipe_dagster/runtime/dagster_sqlite.py).
run_storage:
  module: vidpipe_dagster.runtime.dagster_sqlite
  class: PatientSqliteRunStorage
  config:
    base_dir: history
schedule_storage:
  module: vidpipe_dagster.runtime.dagster_sqlite
  class: PatientSqliteScheduleStorage
  config:
    base_dir: schedules
"""

PREVIOUS_DAGSTER_YAMLS = (
    """\
# Embedded Dagster instance for vidpipe: SQLite storage under this directory.
telemetry:
  enabled: false
# The daemon takes queued runs off the queue every second (Dagster's default is 5 s), so a
# run starts about a second after the editor's execute.
run_queue:
  max_concurrent_runs: 4
  dequeue_interval_seconds: 1
run_monitoring:
  enabled: true
  poll_interval_seconds: 5
sensors:
  use_threads: true
  num_workers: 4
""",
    """\
# Embedded Dagster instance for vidpipe: SQLite storage under this directory.
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 4
run_monitoring:
  enabled: true
  poll_interval_seconds: 5
sensors:
  use_threads: true
  num_workers: 4
""",
)
"""What earlier versions wrote; such a file, unedited, is replaced by the current one."""


def ensure_dagster_home(settings: Settings) -> Path:
    """Use ``$DAGSTER_HOME`` if set, else ``VIDPIPE_HOME/dagster``; write a dagster.yaml there.

    An existing dagster.yaml is left as it is unless an earlier version of vidpipe wrote it
    unchanged (:data:`PREVIOUS_DAGSTER_YAMLS`). Sets ``DAGSTER_HOME`` in this process so
    ``DagsterInstance.get()`` and child processes find it.
    """
    home = Path(os.environ.get("DAGSTER_HOME") or settings.resolved_home / "dagster").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() in PREVIOUS_DAGSTER_YAMLS:
        config.write_text(EMBEDDED_DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
