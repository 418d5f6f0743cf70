"""A real browser: a page on another origin calls the API, and plays a node's output.

Headless Chromium (``tests.fixtures.browser``) loads a page served from a second origin;
the page calls the API with ``fetch`` and the bearer token as the admin editor does. The
API runs in uvicorn on the test database with ``VIDPIPE_API_CONTRACT=editor``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from tests.api.conftest import make_token
from tests.fixtures.browser import Browser, chromium, serve_app, serve_files
from tests.fixtures.editor_client import EditorClient
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings

pytestmark = pytest.mark.timeout(180)

HTML = "<!doctype html><html><head><title>editor</title></head><body></body></html>"


@dataclass
class Served:
    """The API's URL and token, the page origin(s), and a browser."""

    api: str
    token: str
    site: str
    other_site: str
    browser: Browser
    client: EditorClient


def _site(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "index.html").write_text(HTML)
    return directory


def _serve(sessions, tmp_path: Path, storage: Any) -> Iterator[Served]:
    with ExitStack() as stack:
        site = stack.enter_context(serve_files(_site(tmp_path / "site")))
        other = stack.enter_context(serve_files(_site(tmp_path / "other")))
        settings = Settings(
            api_contract="editor", cors_origins=site, media_signing_key="browser-test-key"
        )
        app = create_app(
            settings=settings,
            sessions=sessions,
            notify_change=lambda _uuid: None,
            storage=lambda: storage,
        )
        api = stack.enter_context(serve_app(app))
        token = make_token(sessions, admin=True)
        http = stack.enter_context(
            httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        )
        browser = stack.enter_context(chromium())
        yield Served(api, token, site, other, browser, EditorClient(http))


@pytest.fixture
def local_storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


@pytest.fixture
def served(sessions, tmp_path, local_storage) -> Iterator[Served]:
    yield from _serve(sessions, tmp_path, local_storage)


@pytest.fixture
def served_s3(sessions, tmp_path, s3_storage) -> Iterator[Served]:
    yield from _serve(sessions, tmp_path, s3_storage)


def _calls(api: str, token: str, pipeline: str, script: str) -> str:
    """The editor's list / create / PATCH, written as its browser code does them."""
    return f"""(async () => {{
        const base = {json.dumps(api + "/v1/admin/video_production/pipelines")};
        const headers = {{"Authorization": "Bearer {token}", "Content-Type": "application/json"}};
        const call = async (method, path, body) => {{
            const response = await fetch(base + path, {{
                method, headers, body: body === undefined ? undefined : JSON.stringify(body)
            }});
            return {{status: response.status, body: await response.json()}};
        }};
        const listed = await call("GET", "?page=1&per=25");
        const created = await call("POST", "/{pipeline}/nodes", {{node: {{
            type: "generate-voiceover", title: "Voiceover", inputs: {{script: ""}},
            config: {{provider: "elevenlabs", voiceId: "21m00Tcm4TlvDq8ikWAM"}}
        }}}});
        const uuid = created.body.node.uuid;
        const patched = await call("PATCH", `/{pipeline}/nodes/${{uuid}}`, {{node: {{
            inputs: {{...created.body.node.inputs, script: "{script}"}}
        }}}});
        const missing = await call("GET", "/00000000-0000-4000-8000-000000000000");
        return {{listed, created, patched, missing}};
    }})()"""


def test_a_page_on_an_allowed_origin_uses_the_api(served: Served, tmp_path: Path) -> None:
    pipeline = served.client.create_pipeline({"title": "From the browser", "config": {}})
    pipeline_uuid = pipeline["pipeline"]["uuid"]
    script = served.client.create_node(pipeline_uuid, "asset", asset="text")

    page = served.browser.page(served.site + "/index.html")
    assert page.evaluate("location.origin") == served.site
    result = page.evaluate(_calls(served.api, served.token, pipeline_uuid, script["uuid"]))
    page.screenshot(tmp_path / "artifacts" / "allowed-origin.png")

    assert result["listed"]["status"] == 200
    assert [p["uuid"] for p in result["listed"]["body"]["results"]] == [pipeline_uuid]
    assert result["listed"]["body"]["meta"]["total_count"] == 1
    assert result["created"]["status"] == 201
    created = result["created"]["body"]["node"]
    assert (created["is_valid"], created["inputs"]) == (True, {"script": ""})
    assert result["patched"]["status"] == 200
    assert result["patched"]["body"]["node"]["inputs"] == {"script": script["uuid"]}
    assert result["missing"]["status"] == 404
    assert result["missing"]["body"]["error"]["message"] == "Pipeline not found"
    stored = served.client.get_node(pipeline_uuid, created["uuid"])
    assert stored["inputs"] == {"script": script["uuid"]}


def test_a_page_on_another_origin_is_blocked(served: Served) -> None:
    pipeline = served.client.create_pipeline({"title": "Guarded", "config": {}})
    pipeline_uuid = pipeline["pipeline"]["uuid"]

    page = served.browser.page(served.other_site + "/index.html")
    outcome = page.evaluate(
        f"""(async () => {{
            try {{
                await fetch({json.dumps(served.api)} + "/v1/admin/video_production/pipelines/"
                    + {json.dumps(pipeline_uuid)} + "/nodes", {{
                    method: "POST",
                    headers: {{"Authorization": "Bearer {served.token}",
                               "Content-Type": "application/json"}},
                    body: JSON.stringify({{node: {{type: "asset", title: "Sneaky", inputs: {{}},
                                                   config: {{}}}}}})
                }});
                return "not blocked";
            }} catch (error) {{
                return String(error);
            }}
        }})()"""
    )
    assert outcome == "TypeError: Failed to fetch"
    assert served.client.get_pipeline(pipeline_uuid)["nodes"] == []


def _store_clip(served: Served, storage: Any, clip: Path) -> tuple[str, str, str]:
    pipeline = served.client.create_pipeline({"title": "Playback", "config": {}})
    pipeline_uuid = pipeline["pipeline"]["uuid"]
    node = served.client.create_node(pipeline_uuid, "asset", asset="video")
    key = f"pipelines/{pipeline_uuid}/nodes/{node['uuid']}/p1.mp4"
    storage.put_file(key, clip, content_type="video/mp4")
    return pipeline_uuid, node["uuid"], key


PLAY = """(async () => {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    document.body.appendChild(video);
    const failed = new Promise((_, reject) =>
        video.addEventListener("error", () => reject(new Error("media error " +
            (video.error && video.error.code)))));
    const ready = new Promise(resolve => {
        const check = () => video.readyState >= 2 && resolve();
        video.addEventListener("loadeddata", check);
        video.addEventListener("canplay", check);
    });
    video.src = %s;
    await Promise.race([ready, failed]);
    const loaded = {readyState: video.readyState, duration: video.duration};
    const seeked = new Promise(resolve => video.addEventListener("seeked", resolve, {once: true}));
    video.currentTime = video.duration / 2;
    await Promise.race([seeked, failed]);
    await new Promise(resolve => {
        const check = () => video.readyState >= 2 ? resolve() : setTimeout(check, 50);
        check();
    });
    return {loaded, afterSeek: {readyState: video.readyState, time: video.currentTime}};
})()"""


def _output_location(served: Served, pipeline_uuid: str, node_uuid: str) -> str:
    response = served.client.http.get(
        f"/v1/admin/video_production/pipelines/{pipeline_uuid}/nodes/{node_uuid}/output",
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return response.headers["location"]


@pytest.fixture
def long_clip(make_clip) -> Path:
    return make_clip(color="blue", duration=4.0)


@pytest.mark.parametrize("where", ["local", "s3"])
def test_video_plays_and_seeks_through_the_output_url(
    where, request, long_clip: Path, set_row, tmp_path: Path
) -> None:
    served: Served = request.getfixturevalue("served" if where == "local" else "served_s3")
    storage = request.getfixturevalue("local_storage" if where == "local" else "s3_storage")
    pipeline_uuid, node_uuid, key = _store_clip(served, storage, long_clip)
    set_row(node_uuid, status="completed", output={"type": "video", "s3_key": key})
    location = _output_location(served, pipeline_uuid, node_uuid)
    assert location.startswith("http://127.0.0.1:")
    if where == "local":
        assert location.startswith(served.api + "/v1/media/")

    page = served.browser.page(served.site + "/index.html")
    played = page.evaluate(PLAY % json.dumps(location), timeout=60)
    page.screenshot(tmp_path / "artifacts" / f"video-{where}.png")

    assert played["loaded"]["readyState"] >= 2
    assert played["loaded"]["duration"] == pytest.approx(4.0, abs=0.2)
    assert played["afterSeek"]["readyState"] >= 2
    assert played["afterSeek"]["time"] == pytest.approx(2.0, abs=0.2)
