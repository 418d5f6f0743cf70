"""The Dagster UI reads like the editor: headless Chromium on a real webserver.

The demo pipeline is compiled and two of its nodes (the animation prompt and the animation
it renders) are materialized into the webserver's instance; the browser then finds every
node's title in the asset graph and the animation's preview image loaded on its latest
materialization. Screenshots are kept under the test's ``artifacts/`` directory (the path
is printed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from api.main import create_app
from tests.fixtures.browser import Page, chromium, serve_app
from tests.fixtures.webserver import free_port, running_webserver
from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.db.snapshot import take_snapshot
from vidpipe_dagster.definitions import build_definitions
from vidpipe_dagster.domain.naming import pipeline_names, run_tags
from vidpipe_dagster.domain.nodes import list_nodes
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.runtime.demo import ensure_demo_pipeline
from vidpipe_dagster.settings import Settings, get_settings

pytestmark = pytest.mark.timeout(420)

RENDERED = ("Animation prompt", "Animation")
WINDOW = ("--window-size=1600,1200",)
FACETS = [
    "unsynced-tag", "description", "checks", "latest-event", "status", "kind-tag",
    "automation", "partitions",
]  # fmt: skip
"""Dagster's default node facets plus "description", where a node's title shows."""
PREVIEW = "document.querySelector('img[src^=\"data:image/jpeg\"]')"
SHOW_MARKDOWN = (
    "[...document.querySelectorAll('*')]"
    ".filter(e => e.innerText && e.innerText.trim() === '[Show Markdown]').pop()"
)
"""The innermost element of the metadata table's link that opens a Markdown entry."""
LINK = (
    "[...document.querySelectorAll('a')].map(a => a.href)"
    ".find(h => h.includes('/v1/media/') && h.includes('signature='))"
)


@pytest.fixture
def api_url(sessions, tmp_path: Path, monkeypatch) -> Iterator[str]:
    """The API on the test's storage and signing key, the base of the media links."""
    settings = Settings(home=tmp_path / "vidpipe", storage_url=(tmp_path / "storage").as_uri())
    app = create_app(settings=settings, sessions=sessions, notify_change=lambda _uuid: None)
    with serve_app(app) as url:
        monkeypatch.setenv("VIDPIPE_PUBLIC_API_URL", url)
        get_settings.cache_clear()
        yield url
    get_settings.cache_clear()


@pytest.fixture
def demo(sessions, database_url: str, tmp_path: Path, api_url: str) -> dict:
    """The demo pipeline with two nodes materialized into a Dagster home of its own."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with sessions() as session, session.begin():
        pipeline = ensure_demo_pipeline(session)
        titles = {node.uuid: node.title for node in list_nodes(session, pipeline)}
        names = pipeline_names(session, pipeline.uuid)
        snapshot = take_snapshot(session)
    resource = VidpipeResource(
        database_url=database_url,
        storage_url=(tmp_path / "storage").as_uri(),
        home=str(tmp_path / "vidpipe"),
        providers="local",
    )
    keys = [node_asset_key(names, uuid) for uuid, title in titles.items() if title in RENDERED]
    job = build_definitions(snapshot=snapshot, resource=resource)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = job.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=keys, tags=run_tags(names, source="demo")
        )
    assert result.success
    return {"home": home, "titles": list(titles.values()), "names": names}


@pytest.fixture
def webserver(demo: dict, database_url: str, tmp_path: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(demo["home"]),
        "VIDPIPE_HOME": str(tmp_path / "vidpipe"),
        "VIDPIPE_DATABASE_URL": database_url,
        "VIDPIPE_PROVIDERS": "local",
    }
    with running_webserver(
        workspace="workspace.yaml", port=free_port(), env=env, log_path=tmp_path / "webserver.log"
    ) as url:
        yield url


def _text(page: Page) -> str:
    return page.evaluate("document.body.innerText")


def _skip_welcome(page: Page) -> None:
    """Dismiss the first-visit newsletter dialog when it shows (it covers the graph)."""
    page.evaluate(
        "new Promise(r => setTimeout(() => { [...document.querySelectorAll('button')]"
        ".filter(b => b.innerText.trim() === 'Skip').forEach(b => b.click()); r(true); }, 1500))"
    )


def _graph(page: Page, url: str, *, facets: list[str] | None = None) -> str:
    """The asset graph at ``url`` (with the node ``facets``, else Dagster's defaults)."""
    page.navigate(url)
    if facets is None:
        page.evaluate("localStorage.removeItem('asset-node-facets')")
    else:
        page.evaluate(f"localStorage.setItem('asset-node-facets', '{json.dumps(facets)}')")
    page.navigate(url)
    page.wait_for("document.querySelectorAll('[data-testid^=\"node-\"], foreignObject').length")
    _skip_welcome(page)
    return _text(page)


def test_asset_graph_shows_every_title_and_the_preview_loads(
    demo: dict, webserver: str, api_url: str, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    names = demo["names"]
    graph = f"{webserver}/locations/vidpipe/asset-groups/{names.group}"
    with chromium(extra_args=WINDOW) as browser:
        page = browser.page()
        shown = _graph(page, graph)
        shot = page.screenshot(artifacts / "asset-graph.png")
        print(f"asset graph: {shot}")
        assert names.group in shown
        missing = [n for n in names.nodes.values() if n not in shown]
        assert not missing, f"node names not in the asset graph: {missing} (see {shot})"

        shown = _graph(page, graph, facets=FACETS)
        shot = page.screenshot(artifacts / "asset-graph-descriptions.png")
        print(f"asset graph with descriptions: {shot}")
        missing = [title for title in demo["titles"] if title not in shown]
        assert not missing, f"titles not in the asset graph: {missing} (see {shot})"

        animation = node_asset_key(
            names, next(u for u, t in names.titles.items() if t == "Animation")
        )
        page.navigate(f"{webserver}/assets/{'/'.join(animation.path)}?view=events")
        page.wait_for(f"!!{SHOW_MARKDOWN}", timeout=60)
        assert "duration (s)" in _text(page) and "size (bytes)" in _text(page)
        page.evaluate(f"{SHOW_MARKDOWN}.click()")
        try:
            page.wait_for(f"!!{PREVIEW} && {PREVIEW}.complete", timeout=30)
        finally:
            shot = page.screenshot(artifacts / "materialization-preview.png")
            print(f"materialization preview: {shot}")
        width = page.evaluate(f"{PREVIEW}.naturalWidth")
        assert width > 0, f"the preview did not load (see {shot})"

        link = page.evaluate(LINK)
        assert link.startswith(f"{api_url}/v1/media/"), link
        page.navigate(link)
        page.wait_for(
            "!!document.querySelector('video') && document.querySelector('video').readyState >= 1",
            timeout=30,
        )
        assert page.evaluate("document.querySelector('video').duration") > 3
        shot = page.screenshot(artifacts / "media-link.png")
        print(f"media link: {shot}")

        page.navigate(f"{webserver}/runs")
        page.wait_for(f"document.body.innerText.includes({json.dumps(names.title)})", timeout=60)
        shot = page.screenshot(artifacts / "runs.png")
        print(f"runs: {shot}")
