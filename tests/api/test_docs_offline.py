"""``/docs`` and ``/redoc`` render with no network: headless Chromium, every host but
loopback unresolvable and the usual CDNs blocked, opens them on the app in uvicorn.

The control case shows the blocking bites: FastAPI's stock ``/docs`` (assets from a CDN)
stays blank under the same browser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.fixtures.browser import Page, chromium, serve_app
from vidpipe_dagster.settings import Settings

pytestmark = pytest.mark.timeout(180)

OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",)
BLOCKED = ["*cdn.jsdelivr.net*", "*unpkg.com*", "*fonts.googleapis.com*", "*fonts.gstatic.com*"]
RESOURCES = (
    "JSON.stringify(performance.getEntriesByType('resource')"
    ".filter(e => e.initiatorType !== 'img').map(e => e.name))"
)
"""What the page fetched besides images (ReDoc's footer links a Redocly logo on its CDN:
decorative, it fails offline and nothing depends on it)."""
WAIT_THEN_COUNT = (
    "new Promise(r => setTimeout(() => r(document.querySelectorAll('.opblock').length), 3000))"
)


def _offline(page: Page) -> None:
    page.send("Network.enable")
    page.send("Network.setBlockedURLs", {"urls": BLOCKED})


def _resources(page: Page) -> list[str]:
    return json.loads(page.evaluate(RESOURCES))


def test_docs_and_redoc_render_offline(sessions, tmp_path: Path):
    app = create_app(settings=Settings(), sessions=sessions, notify_change=lambda _uuid: None)
    with serve_app(app) as url, chromium(extra_args=OFFLINE) as browser:
        page = browser.page()
        _offline(page)
        page.navigate(f"{url}/docs")
        count = page.wait_for("document.querySelectorAll('.opblock').length", timeout=30)
        paths = page.evaluate(
            "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText)"
        )
        page.screenshot(tmp_path / "artifacts" / "docs-offline.png")
        assert count == sum(len(ops) for ops in app.openapi()["paths"].values())
        assert any(p.endswith("/pipelines/{pipeline_uuid}/nodes/{node_uuid}") for p in paths)
        assert page.evaluate("!!document.querySelector('.authorize')"), "no bearer scheme shown"
        assert all(r.startswith(url) for r in _resources(page)), _resources(page)

        redoc = browser.page()
        _offline(redoc)
        redoc.navigate(f"{url}/redoc")
        redoc.wait_for("document.body.innerText.includes('Show Pipeline')", timeout=30)
        redoc.screenshot(tmp_path / "artifacts" / "redoc-offline.png")
        assert all(r.startswith(url) for r in _resources(redoc)), _resources(redoc)


def test_stock_cdn_docs_stay_blank_under_the_same_blocking(tmp_path: Path):
    stock = FastAPI()

    @stock.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    with serve_app(stock) as url, chromium(extra_args=OFFLINE) as browser:
        page = browser.page()
        _offline(page)
        page.navigate(f"{url}/docs")
        rendered = page.evaluate(WAIT_THEN_COUNT)
        page.screenshot(tmp_path / "artifacts" / "stock-docs-offline.png")
        assert rendered == 0
