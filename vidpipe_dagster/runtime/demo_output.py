"""What ``vidpipe demo`` prints: a line per change of one of its nodes, then what it made.

While the run goes, each line reads ``[position/total] title  status  elapsed``: the node's
position in the run's plan (the topological order the pipeline's nodes run in, as in
``orchestration.compiler``), its status (``in_progress``, ``completed``, ``reused`` for a
node that took stored work instead of rendering, or ``failed`` with the reason) and the
seconds since the run began. Only nodes this run touched are reported: a node's
``metadata.dagster_run_id`` names the run that last started it, so what an earlier run left
behind is never printed as news. At the end (:func:`report`): the length of the video and
of its narration, a URL that plays the video in a browser, and last the MP4's path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.graph import topological_order
from vidpipe_dagster.domain.node_types import referenced_uuids

TITLE_WIDTH = 18
STATUS_WIDTH = 11
LINK_DAYS = 7
"""How long the printed browser URL works (S3's presigned URLs allow at most 7 days)."""


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: the final node's media and where it is."""

    pipeline_uuid: str
    path: Path | None
    uri: str
    duration: float
    statuses: dict[str, str]
    reused: int = 0
    narration: float = 0.0
    link: str = ""
    link_needs_dev: bool = False


def plan_positions(nodes: Iterable[Node]) -> dict[str, int]:
    """Each node's UUID -> its 1-based position in the order the run executes them."""
    nodes = list(nodes)
    known = {node.uuid for node in nodes}
    deps = {n.uuid: [u for u in referenced_uuids(n.inputs) if u in known] for n in nodes}
    order = topological_order(deps)
    return {uuid: position for position, uuid in enumerate(order, 1)}


def shown_status(status: str, metadata: Mapping[str, Any] | None) -> str:
    """The status a person reads: ``reused`` for a completion that took stored work."""
    if status == "completed" and (metadata or {}).get("reused_from"):
        return "reused"
    return status


def progress_line(
    *, position: int, total: int, title: str, status: str, elapsed: float, error: str = ""
) -> str:
    """``[position/total] title  status  elapsed`` (and the reason of a failure)."""
    width = len(str(total))
    line = (
        f"  [{position:>{width}}/{total}] {title:<{TITLE_WIDTH}}  "
        f"{status:<{STATUS_WIDTH}}  {elapsed:5.1f} s"
    )
    return f"{line}  {error}" if error else line


def watch_progress(
    sessions: sessionmaker[Session],
    *,
    pipeline_id: Any,
    run_id: str,
    positions: Mapping[str, int],
    echo: Callable[[str], None],
    stop: threading.Event,
    interval: float = 0.5,
) -> None:
    """Print a :func:`progress_line` for each status change of the run's nodes until
    ``stop`` is set (then once more, so the last changes are printed)."""
    begun = time.monotonic()
    seen: dict[str, str] = {}
    while True:
        with sessions() as session:
            rows = session.execute(
                select(Node.id, Node.title, Node.status, Node.metadata_).where(
                    Node.pipeline_id == pipeline_id
                )
            ).all()
        elapsed = time.monotonic() - begun
        for row in sorted(rows, key=lambda r: positions.get(str(r.id), len(positions) + 1)):
            metadata = row.metadata_ or {}
            uuid = str(row.id)
            if uuid not in positions or metadata.get("dagster_run_id") != run_id:
                continue
            status = shown_status(row.status, metadata)
            if status == "pending" or seen.get(uuid) == status:
                continue
            seen[uuid] = status
            echo(
                progress_line(
                    position=positions[uuid],
                    total=len(positions),
                    title=row.title,
                    status=status,
                    elapsed=elapsed,
                    error=str(metadata.get("error") or "") if status == "failed" else "",
                )
            )
        if stop.is_set():
            return
        stop.wait(interval)


def demo_result(
    *, settings: Any, pipeline_uuid: str, rows: list[Node], run_id: str, success: bool
) -> DemoResult:
    """What the run made from the pipeline's ``rows`` after it, or ``RuntimeError`` naming
    the nodes that failed."""
    from vidpipe_dagster.resources.storage import storage_from_settings

    last = rows[-1]
    if not success or last.status != "completed" or not last.output:
        failed = [
            f"{r.title}: {(r.metadata_ or {}).get('error')}" for r in rows if r.status == "failed"
        ]
        raise RuntimeError("The demo run failed. " + "; ".join(failed))
    reused = sum(
        1
        for row in rows
        if (row.metadata_ or {}).get("reused_from")
        and (row.metadata_ or {}).get("dagster_run_id") == run_id
    )
    voiceover = next(row for row in rows if row.type == "generate-voiceover")
    storage = storage_from_settings(settings)
    key = last.output["s3_key"]
    uri = storage.uri_for(key)
    link, needs_dev = browser_link(settings, storage=storage, key=key)
    return DemoResult(
        pipeline_uuid=pipeline_uuid,
        path=Path(uri.removeprefix("file://")) if uri.startswith("file://") else None,
        uri=uri,
        duration=float(last.output.get("duration") or 0.0),
        statuses={row.title: row.status for row in rows},
        reused=reused,
        narration=float((voiceover.output or {}).get("duration") or 0.0),
        link=link,
        link_needs_dev=needs_dev,
    )


def browser_link(settings: Any, *, storage: Any, key: str) -> tuple[str, bool]:
    """A URL that plays ``key`` in a browser for :data:`LINK_DAYS`, and whether it needs
    ``vidpipe dev``: S3's presigned URL, else the API's signed ``/v1/media`` URL on
    ``vidpipe dev``'s default address."""
    from vidpipe_dagster.resources.media_links import media_url
    from vidpipe_dagster.runtime.devserver import DEFAULT_API_URL

    seconds = LINK_DAYS * 24 * 3600
    url = storage.browser_url(key, expires_in=seconds)
    if url.startswith(("http://", "https://")):
        return url, False
    return media_url(settings, base_url=DEFAULT_API_URL, key=key, seconds=seconds), True


def report(result: DemoResult, echo: Callable[[str], None]) -> None:
    """The demo's last lines: its length and the narration's, a URL that plays it in a
    browser, then the MP4's path (or URI) alone."""
    echo("")
    if result.reused:
        echo(
            f"Reused the finished work of {result.reused} of {len(result.statuses)} nodes; "
            "`vidpipe demo --force` renders them again"
        )
    echo(f"Done: {result.duration:.1f} s of video (narration {result.narration:.1f} s)")
    if result.link:
        where = " while `vidpipe dev` runs" if result.link_needs_dev else ""
        echo(f"Play it in a browser{where} (the link works for {LINK_DAYS} days):")
        echo(result.link)
    echo(str(result.path or result.uri))
