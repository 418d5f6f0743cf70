"""Names vulture sees no use of that are used all the same (never imported or run).

Add a name here only when a framework or a test reads it; delete dead code instead.
"""
# ruff: noqa: B018, F821

# Counters and waits that tests and benchmarks read.
_.statements  # api.event_hub.EventHub: tests/api/test_events.py
_.open_streams  # api.event_hub.EventHub: the event stream's capacity check in tests
_.computed  # vidpipe_dagster.orchestration.code_server.MEMO: tests/dagster/test_code_server.py
_.wait_idle  # vidpipe_dagster.runs.reload.Reloader: tests/dagster/test_reloader.py
_.unregister  # vidpipe_dagster.resources.providers.registry: adding-a-provider test
_.voice_name  # vidpipe_dagster.resources.speech: tests/resources/test_speech.py
_.live  # api.read_cache.ReadCache: tests/api/test_read_cache.py
_.batches  # api.node_batches.NodeBatches: tests/api/test_node_batches.py
_.key_of  # assets.asset_keys: a node's asset key by UUIDs, for tests and benchmarks

# Loaded by Dagster by name: the code location (workspace.yaml's `attribute: defs`).
_.defs

# Called by Dagster: a state-backed component's hooks.
_.defs_state_config
_.write_state_to_path
_.build_defs_from_state

# Set on a DB-API connection (sqlite3 reads it).
_.isolation_level

# Dagster's code server reads the multiprocessing context it starts run workers with.
_._mp_ctx

# Dagster builds its storages through these (ConfigurableClass).
_.from_config_value

# Named by the embedded dagster.yaml (runtime/dagster_home.py), built by Dagster.
_.PatientSqliteRunStorage
_.PatientSqliteScheduleStorage
