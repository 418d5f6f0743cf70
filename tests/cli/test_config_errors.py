"""Every CLI command names the setting to fix, in a line or two, with exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.database import ADMIN_URL

SERVER = ADMIN_URL.rsplit("/", 1)[0]
MODES = {
    "unreachable server": (
        {"VIDPIPE_DATABASE_URL": "postgresql://vidpipe:s3cret@127.0.0.1:9/vidpipe"},
        "VIDPIPE_DATABASE_URL=postgresql://vidpipe:***@127.0.0.1:9/vidpipe: cannot connect",
    ),
    "unknown scheme": (
        {"VIDPIPE_DATABASE_URL": "mongodb://db/vidpipe"},
        "VIDPIPE_DATABASE_URL=mongodb://db/vidpipe is not a database URL vidpipe can use",
    ),
    "missing database": (
        {"VIDPIPE_DATABASE_URL": f"{SERVER}/vidpipe_no_such_database"},
        "the database 'vidpipe_no_such_database' does not exist",
    ),
    "impossible sqlite path": (
        {"VIDPIPE_DATABASE_URL": "sqlite:////proc/vidpipe/vidpipe.db"},
        "VIDPIPE_DATABASE_URL=sqlite:////proc/vidpipe/vidpipe.db: cannot write /proc/vidpipe",
    ),
    "read-only home": (
        {"VIDPIPE_HOME": "/sys/vidpipe"},
        "VIDPIPE_HOME=/sys/vidpipe: cannot write /sys/vidpipe",
    ),
    "invalid number": (
        {"VIDPIPE_DAGSTER_SHARDS": "two"},
        "Invalid setting VIDPIPE_DAGSTER_SHARDS: Input should be a valid integer",
    ),
}
COMMANDS = [["db", "upgrade"], ["tokens", "list"], ["api"], ["demo"], ["dev"]]
CASES = [(mode, ["tokens", "list"]) for mode in MODES] + [
    (mode, command)
    for mode in ("unreachable server", "read-only home")
    for command in COMMANDS
    if command != ["tokens", "list"]
]


def _vidpipe(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "VIDPIPE_HOME": str(home), **env}
    if "VIDPIPE_DATABASE_URL" not in env:
        environment.pop("VIDPIPE_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "vidpipe_dagster.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("mode", "command"), CASES, ids=[f"{m}: {' '.join(c)}" for m, c in CASES])
def test_a_configuration_problem_is_one_line_naming_the_setting(
    mode: str, command: list[str], tmp_path: Path
) -> None:
    env, expected = MODES[mode]

    result = _vidpipe(tmp_path, *command, **env)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("Error: ")
    assert expected in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "s3cret" not in result.stderr + result.stdout


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    env, _ = MODES["unreachable server"]

    result = _vidpipe(tmp_path, "--debug", "tokens", "list", **env)

    assert result.returncode == 1
    assert "Traceback" in result.stderr and "OperationalError" in result.stderr


def test_a_database_without_tables_says_to_migrate(tmp_path: Path) -> None:
    result = _vidpipe(tmp_path, "tokens", "list")

    assert result.returncode == 2
    assert "has no vidpipe tables yet. Run `vidpipe db upgrade` first." in result.stderr


def test_version() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [sys.executable, "-m", "vidpipe_dagster.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0
    assert result.stdout.strip() == f"vidpipe, version {version('vidpipe')}"


def test_tokens_list_shows_use_and_revoke_stops_the_token(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from vidpipe_dagster.settings import Settings

    _vidpipe(tmp_path, "db", "upgrade")
    token = _vidpipe(tmp_path, "tokens", "create", "editor", "--admin").stdout.splitlines()[-1]
    _vidpipe(tmp_path, "tokens", "create", "viewer")
    settings = Settings(home=tmp_path)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings=settings, notify_change=lambda uuid: None)) as client:
        assert (
            client.get("/v1/admin/video_production/pipelines", headers=headers).status_code == 200
        )

        listed = _vidpipe(tmp_path, "tokens", "list").stdout.splitlines()
        assert listed[0].split() == ["NAME", "ADMIN", "CREATED", "LAST", "USED", "REVOKED"]
        editor = next(line for line in listed if line.startswith("editor"))
        viewer = next(line for line in listed if line.startswith("viewer"))
        assert editor.split()[1] == "yes" and "never" not in editor and editor.endswith("-")
        assert viewer.split()[1] == "no" and "never" in viewer

        revoked = _vidpipe(tmp_path, "tokens", "revoke", "editor")
        assert revoked.stdout.strip() == "Revoked 1 token named 'editor'."
        refused = client.get("/v1/admin/video_production/pipelines", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "Invalid or revoked token"

    again = _vidpipe(tmp_path, "tokens", "revoke", "editor")
    assert again.returncode == 1 and "No live token named 'editor'" in again.stderr
    assert not _vidpipe(tmp_path, "tokens", "list").stdout.splitlines()[1].endswith("-")
