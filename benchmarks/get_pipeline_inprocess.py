# ruff: noqa: E402  (the app's imports follow the sys.path fix below)
"""One ``GET /pipelines/{uuid}`` of a 50-node pipeline, in process (TestClient, PostgreSQL).

Prints the median time of a GET served by the app on ``PYTHONPATH`` (run it once with each
tree to compare two versions), and beside it, from the same run, what validating that body
through the OpenAPI response model (``PipelineDetailEnvelope``) would add per request, the
cost the routes avoid by returning their ``JSONResponse`` directly.

    PYTHONPATH=$PWD python benchmarks/get_pipeline_inprocess.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

# This folder's api.py would shadow the app's ``api`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import psycopg
from fastapi.testclient import TestClient

from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.nodes import create_node
from vidpipe_dagster.domain.pipelines import create_pipeline
from vidpipe_dagster.domain.tokens import create_token

ADMIN_URL = os.environ.get(
    "VIDPIPE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def seed(url: str) -> tuple[str, str]:
    """An admin token and a pipeline of 50 asset nodes (as ``benchmarks/api.py`` seeds)."""
    sessions = make_sessionmaker(make_engine(url))
    with sessions() as session, session.begin():
        token = create_token(session, name="bench", admin=True)
        pipeline = create_pipeline(session, title="Benchmark")
        for i in range(50):
            create_node(session, pipeline, title=f"Clip {i}", type="asset", asset={"type": "video"})
        return token, pipeline.uuid


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        token, pipeline_uuid = seed(url)
        from api.main import create_app
        from vidpipe_dagster.settings import Settings

        engine = make_engine(url)
        app = create_app(
            settings=Settings(), sessions=make_sessionmaker(engine), notify_change=lambda _u: None
        )
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/v1/admin/video_production/pipelines/{pipeline_uuid}"
        with TestClient(app) as client:
            for _ in range(20):
                client.get(path, headers=headers).raise_for_status()
            gets = []
            for _ in range(args.requests):
                start = time.perf_counter()
                response = client.get(path, headers=headers)
                gets.append(time.perf_counter() - start)
            body = response.json()
        print(f"GET 50-node pipeline, median of {args.requests}: {_median_ms(gets):.2f} ms")
        try:
            from api.responses import PipelineDetailEnvelope
        except ImportError:
            print("(no api.responses in this tree: no model to compare with)")
            return
        validations = []
        for _ in range(args.requests):
            start = time.perf_counter()
            PipelineDetailEnvelope.model_validate(body).model_dump_json()
            validations.append(time.perf_counter() - start)
        print(
            f"  + validating it through PipelineDetailEnvelope would add: "
            f"{_median_ms(validations):.2f} ms a request (avoided)"
        )
        engine.dispose()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
