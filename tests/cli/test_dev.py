"""``vidpipe dev`` on a fresh embedded home: both services come up, Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.webserver import free_port

LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (the webserver, daemon and code servers
    started by ``dagster dev`` name the instance's directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _up(api: str, dagster: str) -> bool:
    try:
        health = httpx.get(f"{api}/healthz", timeout=5)
        body = httpx.post(f"{dagster}/graphql", json={"query": LOCATIONS}, timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    entries = body["data"]["workspaceOrError"]["locationEntries"]
    return health.status_code == 200 and [(e["name"], e["loadStatus"]) for e in entries] == [
        ("vidpipe", "LOADED")
    ]


def test_dev_serves_the_api_and_dagster_and_stops_both_on_ctrl_c(tmp_path: Path):
    home = tmp_path / "home"
    env = {**os.environ, "VIDPIPE_HOME": str(home)}
    for name in (
        "VIDPIPE_DATABASE_URL",
        "VIDPIPE_STORAGE_URL",
        "DAGSTER_HOME",
        "VIDPIPE_CORS_ALLOW_LOCALHOST",
    ):
        env.pop(name, None)
    api_port, dagster_port = free_port(), free_port()
    out = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "vidpipe_dagster.cli", "dev"]
        + ["--api-port", str(api_port), "--dagster-port", str(dagster_port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,  # not the repo: the installed package must be enough
    )
    api, dagster = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dagster_port}"
    try:
        deadline = time.monotonic() + 180
        while not _up(api, dagster):
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(1)
        printed = (tmp_path / "dev.log").read_text()
        assert f"vidpipe API   {api}" in printed and f"Dagster UI    {dagster}" in printed
        assert (home / "vidpipe.db").exists() and (home / "dagster" / "dagster.yaml").exists()
        assert _processes_mentioning(str(home / "dagster")), "dagster dev's children not found"
        preflight = httpx.options(
            f"{api}/v1/admin/video_production/pipelines",
            headers={
                "Origin": "http://localhost:3062",
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=10,
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:3062"

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        out.close()
    log = (tmp_path / "dev.log").read_text()
    assert "Stopped." in log
    deadline = time.monotonic() + 30
    while (
        _listening(api_port)
        or _listening(dagster_port)
        or _processes_mentioning(str(home / "dagster"))
    ):
        assert time.monotonic() < deadline, "a service outlived vidpipe dev"
        time.sleep(0.5)


def _dev(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    api_port, dagster_port = free_port(), free_port()
    out = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "vidpipe_dagster.cli", "dev"]
        + ["--api-port", str(api_port), "--dagster-port", str(dagster_port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    out.close()
    return process, f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dagster_port}"


def test_dev_creates_and_executes_a_pipeline_at_once(tmp_path: Path):
    """A new user's first minute on the embedded defaults: SQLite, no reload beforehand.

    The execute waits for the location's first reload; its bound is raised so a loaded
    machine measures the wait, not the 503 (tested in tests/dagster/test_plans_api.py).
    """
    home = tmp_path / "home"
    env = {**os.environ, "VIDPIPE_HOME": str(home), "VIDPIPE_EXECUTE_WAIT_SECONDS": "300"}
    for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
    process, api, dagster = _dev(tmp_path, env)
    log = tmp_path / "dev.log"
    try:
        deadline = time.monotonic() + 180
        while not _up(api, dagster):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        created = subprocess.run(
            [sys.executable, "-m", "vidpipe_dagster.cli", "tokens", "create", "me", "--admin"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        token = created.stdout.strip().splitlines()[-1]
        base = f"{api}/v1/admin/video_production/pipelines"
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=400) as client:
            pipeline = client.post(base, json={"pipeline": {"title": "First"}}).json()["pipeline"]
            node = client.post(
                f"{base}/{pipeline['uuid']}/nodes",
                json={
                    "node": {
                        "title": "Script",
                        "type": "asset",
                        "asset": {"type": "text", "content": "Hello."},
                    }
                },
            ).json()["node"]
            begun = time.monotonic()
            response = client.post(f"{base}/{pipeline['uuid']}/nodes/{node['uuid']}/execute")
            answered = time.monotonic() - begun
            assert response.status_code == 202, (response.text, answered)
            run_id = response.json()["run_id"]
            deadline = time.monotonic() + 120
            while True:
                row = client.get(f"{base}/{pipeline['uuid']}/nodes/{node['uuid']}").json()["node"]
                if row["status"] == "completed":
                    break
                assert row["status"] in ("pending", "in_progress"), row
                assert time.monotonic() < deadline, (row, log.read_text())
                time.sleep(0.5)
        assert row["metadata"]["dagster_run_id"] == run_id
        assert "database is locked" not in log.read_text()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
