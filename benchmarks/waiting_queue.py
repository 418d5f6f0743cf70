"""The provider-slot queue in one sensor tick: ``provider_queue.grant_slots`` over N waits.

A fresh PostgreSQL database (``VIDPIPE_BENCH_PG_ADMIN_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``) holds ``--waiting`` HeyGen nodes waiting
for a slot (recorded with ``provider_queue.enqueue``, as steps do) and ``--limit`` slots, all
free. For each size it prints:

- *last enqueue*: recording the last node's wait (what a step pays: lock, count ahead);
- *baseline*: one plain read of the same waiting rows (the least any pass must do);
- *first pass*: grants the free slots and rewrites every waiting node's stage (positions
  all changed);
- *steady pass*: the next tick, nothing freed: reads and locks the queue, writes nothing.

    python benchmarks/waiting_queue.py --waiting 100 1000 3000 --limit 3
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_database() -> tuple[str, str, str]:
    """A fresh migrated database: ``(sqlalchemy url, admin url, name)``."""
    import psycopg

    from vidpipe_dagster.db import migrate

    admin = os.environ.get(
        "VIDPIPE_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"vidpipe_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    return url.replace("postgresql://", "postgresql+psycopg://", 1), admin, name


def drop_database(admin: str, name: str) -> None:
    """Drop the benchmark database."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def measure(url: str, *, waiting: int, limit: int) -> dict[str, float]:
    """Seconds for the baseline read, the first pass and a steady pass over ``waiting``."""
    from sqlalchemy import create_engine, delete
    from sqlalchemy.orm import sessionmaker

    from vidpipe_dagster.assets.provider_queue import _waiting_rows, enqueue, grant_slots
    from vidpipe_dagster.db.models import Node, Pipeline
    from vidpipe_dagster.settings import Settings

    engine = create_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session, session.begin():
        session.execute(delete(Pipeline))
        pipeline = Pipeline(id=uuid.uuid4(), title="bench", config={})
        session.add(pipeline)
        session.flush()
        ids = [uuid.uuid4() for _ in range(waiting)]
        talk = {"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hi."}
        session.add_all(
            Node(id=i, pipeline_id=pipeline.id, title=f"t{n}", type="talking-head", config=talk)
            for n, i in enumerate(ids)
        )
    enqueued = 0.0
    for node_id in ids:
        begun = time.perf_counter()
        assert enqueue(sessions, node_uuid=str(node_id), provider="heygen", run_id="bench")
        enqueued = time.perf_counter() - begun
    settings = Settings(provider_limits={"heygen": limit})

    begun = time.perf_counter()
    with sessions() as session:
        rows = _waiting_rows(session, provider="heygen")
    baseline = time.perf_counter() - begun
    assert len(rows) == waiting

    begun = time.perf_counter()
    grants = grant_slots(sessions, settings=settings)
    first = time.perf_counter() - begun
    assert len(grants) == min(limit, waiting)

    begun = time.perf_counter()
    assert grant_slots(sessions, settings=settings) == []
    steady = time.perf_counter() - begun
    engine.dispose()
    return {"baseline": baseline, "first": first, "steady": steady, "enqueue": enqueued}


def main() -> None:
    """Parse the arguments, measure each size, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waiting", type=int, nargs="+", default=[100, 1000, 3000])
    parser.add_argument("--limit", type=int, default=3)
    args = parser.parse_args()
    url, admin, name = make_database()
    try:
        print("| waiting | last enqueue ms | baseline read ms | first pass ms | steady pass ms |")
        print("|---|---|---|---|---|")
        for size in args.waiting:
            figures = measure(url, waiting=size, limit=args.limit)
            print(
                f"| {size:,} | {figures['enqueue'] * 1000:,.1f} | "
                f"{figures['baseline'] * 1000:,.1f} | "
                f"{figures['first'] * 1000:,.1f} | {figures['steady'] * 1000:,.1f} |"
            )
    finally:
        drop_database(admin, name)


if __name__ == "__main__":
    main()
