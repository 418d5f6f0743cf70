"""``vidpipe dev`` on a fresh embedded home: both services come up; Ctrl-C stops both within
5 s, printing one line and leaving no process behind; quiet unless ``--verbose``; a run
leaves the queue within 2 s of its execute."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.fixtures.webserver import free_port
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import INTERRUPTED
from vidpipe_dagster.runtime.devserver import STOPPED

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


def _quiet_log(path: Path, *, seconds: float = 1.5, patience: float = 30) -> int:
    """The log's length once nothing was written to it for ``seconds`` (the services print
    as they tick; what they print before Ctrl-C is not the command's own output)."""
    deadline = time.monotonic() + patience
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        current = path.stat().st_size
        if current != size:
            size, since = current, time.monotonic()
        elif time.monotonic() - since >= seconds:
            break
        time.sleep(0.1)
    return len(path.read_text())


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

        before = _quiet_log(tmp_path / "dev.log")
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - interrupted < 5, "vidpipe dev took 5 s or more to stop"
    finally:
        if process.poll() is None:
            process.kill()
        out.close()
    after = (tmp_path / "dev.log").read_text()[before:]
    assert after.splitlines() == [STOPPED], after
    deadline = interrupted + 5
    while (
        _listening(api_port)
        or _listening(dagster_port)
        or _processes_mentioning(str(home / "dagster"))
    ):
        assert time.monotonic() < deadline, "a service outlived vidpipe dev by 5 s"
        time.sleep(0.1)


def test_ctrl_c_in_dev_marks_the_running_node_interrupted(tmp_path: Path, database_url: str):
    """A node rendering when Ctrl-C comes is failed as interrupted, not left in_progress (on
    PostgreSQL: the embedded SQLite path has its own locking issue, tested elsewhere)."""
    home = tmp_path / "home"
    env = {
        **os.environ,
        "VIDPIPE_HOME": str(home),
        "VIDPIPE_DATABASE_URL": database_url,
        "VIDPIPE_PROVIDERS": "local",
    }
    for name in ("VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
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
    api, dagster = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dagster_port}"
    engine = make_engine(database_url)
    try:
        deadline = time.monotonic() + 180
        while not _up(api, dagster):
            assert process.poll() is None, (tmp_path / "dev.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "dev.log").read_text()
            time.sleep(1)
        token = subprocess.run(
            [sys.executable, "-m", "vidpipe_dagster.cli", "tokens", "create", "dev", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        client = httpx.Client(
            base_url=f"{api}/v1/admin/video_production",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        pipeline = client.post("/pipelines", json={"pipeline": {"title": "Dev"}}).json()
        node = client.post(
            f"/pipelines/{pipeline['pipeline']['uuid']}/nodes",
            json={
                "node": {
                    "title": "Long animation",
                    "type": "generate-animation",
                    "config": {"prompt": "waves", "duration": 120},
                }
            },
        ).json()["node"]
        path = f"/pipelines/{pipeline['pipeline']['uuid']}/nodes/{node['uuid']}"
        response = client.post(f"{path}/execute")
        assert response.status_code == 202, response.text
        while client.get(path).json()["node"]["status"] != "in_progress":
            assert time.monotonic() < deadline + 120, client.get(path).text
            time.sleep(0.5)

        before = _quiet_log(tmp_path / "dev.log", seconds=0.5, patience=5)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - interrupted < 5, "vidpipe dev took 5 s or more to stop"
    finally:
        if process.poll() is None:
            process.kill()
        out.close()
    assert (tmp_path / "dev.log").read_text()[before:].splitlines() == [STOPPED]
    with make_sessionmaker(engine)() as session:
        row = session.get(Node, uuid.UUID(node["uuid"]))
        progress = session.get(Pipeline, row.pipeline_id).metadata_["progress"]
    engine.dispose()
    assert row.status == "failed" and row.metadata_["error"] == INTERRUPTED, row.metadata_
    assert progress["in_progress"] == 0
    while _processes_mentioning(str(home / "dagster")):
        assert time.monotonic() < interrupted + 5, "a service outlived vidpipe dev by 5 s"
        time.sleep(0.1)


def _dev(tmp_path: Path, env: dict[str, str], *options: str) -> tuple[subprocess.Popen, str, str]:
    api_port, dagster_port = free_port(), free_port()
    out = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "vidpipe_dagster.cli", "dev", *options]
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


RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


def _launched_after(dagster: str, run_id: str, answered: float) -> tuple[float, float]:
    """Seconds from ``answered`` until the run left the queue (``STARTING`` or later) and
    until its worker began (``STARTED`` or later)."""
    launched = begun = None
    while begun is None:
        assert time.monotonic() - answered < 120, f"run {run_id} never started"
        body = httpx.post(
            f"{dagster}/graphql",
            json={"query": RUN_STATUS, "variables": {"id": run_id}},
            timeout=10,
        ).json()
        status = body["data"]["runOrError"]["status"]
        now = time.monotonic() - answered
        if status not in ("QUEUED", "NOT_STARTED"):
            launched = launched if launched is not None else now
        if status not in ("QUEUED", "NOT_STARTED", "STARTING"):
            begun = now
        time.sleep(0.02)
    return launched, begun


def _clean_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "VIDPIPE_HOME": str(home), "VIDPIPE_EXECUTE_WAIT_SECONDS": "300"}
    for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
    return env


def _wait_up(process: subprocess.Popen, api: str, dagster: str, log: Path) -> None:
    deadline = time.monotonic() + 180
    while not _up(api, dagster):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(1)


def test_dev_is_quiet_starts_runs_within_seconds_and_stops_fast(tmp_path: Path):
    """Runs executed and seconds of idling print nothing past the four header lines; each
    run leaves the queue within 2 s of the execute's answer (median of three)."""
    env = _clean_env(tmp_path / "home")
    process, api, dagster = _dev(tmp_path, env)
    log = tmp_path / "dev.log"
    try:
        _wait_up(process, api, dagster, log)
        token = subprocess.run(
            [sys.executable, "-m", "vidpipe_dagster.cli", "tokens", "create", "me", "--admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()[-1]
        base = f"{api}/v1/admin/video_production/pipelines"
        figures = []
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=400) as client:
            pipeline = client.post(base, json={"pipeline": {"title": "Quiet"}}).json()["pipeline"]
            nodes = f"{base}/{pipeline['uuid']}/nodes"
            for i in range(3):
                node = client.post(
                    nodes,
                    json={
                        "node": {
                            "title": f"Line {i}",
                            "type": "asset",
                            "asset": {"type": "text", "content": f"Line {i}."},
                        }
                    },
                ).json()["node"]
                response = client.post(f"{nodes}/{node['uuid']}/execute")
                answered = time.monotonic()
                assert response.status_code == 202, response.text
                figures.append(_launched_after(dagster, response.json()["run_id"], answered))
        time.sleep(8)
        quiet = log.read_text()
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        assert process.wait(timeout=10) == 0
        stopped = time.monotonic() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
    print(f"run left the queue / began, s after the answer: {figures}; stop {stopped:.2f} s")
    lines = quiet.splitlines()
    assert len(lines) == 4 and lines[0].startswith("vidpipe API   "), quiet
    assert lines[-1].startswith("Press Ctrl-C to stop both. (quiet: `vidpipe dev --verbose`")
    assert sorted(launched for launched, _ in figures)[1] < 2.0, figures
    assert stopped < 5, f"vidpipe dev took {stopped:.1f} s to stop"
    assert log.read_text()[len(quiet) :].splitlines() == [STOPPED]


def test_dev_verbose_relays_the_services_logs(tmp_path: Path):
    env = _clean_env(tmp_path / "home")
    process, api, dagster = _dev(tmp_path, env, "--verbose")
    log = tmp_path / "dev.log"
    try:
        _wait_up(process, api, dagster, log)
        deadline = time.monotonic() + 30
        while " - dagster.daemon" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    text = log.read_text()
    assert "SupersessionWarning" in text
    assert re.search(r"^\S+ \S+ \+0000 - dagster\.daemon\S* - INFO - ", text, re.MULTILINE), text
    assert "INFO:     Uvicorn running on" in text
    assert "(quiet:" not in text
