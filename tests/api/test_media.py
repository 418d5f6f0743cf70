"""``/output`` leads to bytes an HTTP client can follow: signed local media, presigned S3."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.media import sign
from tests.api.conftest import BASE
from vidpipe_dagster.resources.storage import LocalStorage
from vidpipe_dagster.settings import Settings

BODY = bytes(range(256)) * 40


def _app_client(sessions, storage, **settings) -> TestClient:
    app = create_app(
        settings=Settings(media_signing_key="k1", **settings),
        sessions=sessions,
        notify_change=lambda _uuid: None,
        storage=lambda: storage,
    )
    return TestClient(app, raise_server_exceptions=False)


def _stored_node(api, set_row, storage, *, ext: str = "mp4") -> str:
    pipeline = api.pipeline()
    node = api.node(pipeline)
    key = f"pipelines/{pipeline['uuid']}/nodes/{node['uuid']}/p1.{ext}"
    storage.put_bytes(key, BODY, content_type="video/mp4")
    set_row(node["uuid"], status="completed", output={"type": "video", "s3_key": key})
    return f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/output"


@pytest.fixture
def local(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def test_local_output_is_a_signed_http_url_with_range_requests(
    sessions, api, set_row, local, admin_headers
) -> None:
    url = _stored_node(api, set_row, local)
    with _app_client(sessions, local) as client:
        location = client.get(url, headers=admin_headers, follow_redirects=False).headers[
            "location"
        ]
        assert location.startswith("http://testserver/v1/media/pipelines/")
        query = parse_qs(urlsplit(location).query)
        assert int(query["expires"][0]) - time.time() == pytest.approx(900, abs=5)

        whole = client.get(location)
        assert (whole.status_code, whole.content) == (200, BODY)
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["accept-ranges"] == "bytes"
        head = client.head(location)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == str(len(BODY))
        part = client.get(location, headers={"Range": "bytes=1000-1099"})
        assert part.status_code == 206
        assert part.content == BODY[1000:1100]
        assert part.headers["content-range"] == f"bytes 1000-1099/{len(BODY)}"


def test_signed_urls_refuse_tampering_and_expiry(sessions, api, set_row, local, admin_headers):
    url = _stored_node(api, set_row, local)
    with _app_client(sessions, local) as client:
        location = client.get(url, headers=admin_headers, follow_redirects=False).headers[
            "location"
        ]
        path, _, query = location.partition("?")
        other = path.replace("p1.mp4", "p2.mp4")
        assert client.get(f"{other}?{query}").status_code == 403
        assert client.get(path).status_code == 403
        assert client.get(location[:-4] + "0000").status_code == 403
        assert client.get(location).status_code == 200

        key = urlsplit(path).path.removeprefix("/v1/media/")
        past = int(time.time()) - 1
        signature = sign(client.app.state.settings, key=key, expires=past)
        expired = client.get(f"{path}?expires={past}&signature={signature}")
        assert expired.status_code == 403
        assert expired.json()["error"]["message"].startswith("Media URL has expired")
    with _app_client(sessions, local) as client:
        forged = client.app.state.settings.model_copy(update={"media_signing_key": "k2"})
        client.app.state.settings = forged
        assert client.get(location).status_code == 403


def test_s3_output_redirects_to_a_presigned_url(
    sessions, api, set_row, s3_storage, admin_headers
) -> None:
    url = _stored_node(api, set_row, s3_storage)
    with _app_client(sessions, s3_storage) as client:
        response = client.get(url, headers=admin_headers, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:") and "Signature" in location
    fetched = httpx.get(location, headers={"Range": "bytes=0-9"})
    assert (fetched.status_code, fetched.content) == (206, BODY[:10])
