"""The API process serves writes without importing Dagster (it names locations itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from api.main import create_app
from vidpipe_dagster.domain.tokens import create_token

app = create_app()
with app.state.sessions() as session, session.begin():
    token = create_token(session, name="admin", admin=True)
headers = {"Authorization": f"Bearer {token}"}
base = "/v1/admin/video_production/pipelines"
with TestClient(app) as client:
    loaded_at_start = sorted(m for m in sys.modules if m.split(".")[0] == "dagster")
    pipeline = client.post(base, json={"pipeline": {"title": "no dagster"}}, headers=headers)
    uuid = pipeline.json()["pipeline"]["uuid"]
    node = client.post(
        f"{base}/{uuid}/nodes",
        json={"node": {"title": "script", "type": "asset", "inputs": {}}},
        headers=headers,
    )
    renamed = client.patch(
        f"{base}/{uuid}", json={"pipeline": {"title": "renamed"}}, headers=headers
    )
print(json.dumps({
    "statuses": [pipeline.status_code, node.status_code, renamed.status_code],
    "at_start": loaded_at_start,
    "after_writes": sorted(m for m in sys.modules if m.split(".")[0] == "dagster"),
    "reload_module": "vidpipe_dagster.runs.reload" in sys.modules,
}))
"""


def test_writes_do_not_import_dagster(
    sessions: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    """Startup and three writes (each asking for a code-location reload) leave ``dagster``
    out of ``sys.modules``; the reload request itself is made (its module is loaded)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "VIDPIPE_HOME": str(tmp_path),
        "VIDPIPE_DATABASE_URL": database_url,
        "VIDPIPE_DAGSTER_URL": "http://127.0.0.1:9",
        "VIDPIPE_DAGSTER_SHARDS": "2",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [201, 201, 200]
    assert result["reload_module"] is True
    assert result["at_start"] == []
    assert result["after_writes"] == []
