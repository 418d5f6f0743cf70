"""The editor's poll answered from the read cache before routing (:mod:`api.cached_reads`):
the same answer as the route, CORS included, and every refusal still the route's."""

from __future__ import annotations

import time

import pytest

from tests.api.conftest import BASE, ChangeRecorder, build_client, make_token

EDITOR = "http://localhost:3065"


@pytest.fixture
def app_client(sessions):
    """A client of an app that counts the requests reaching its router."""
    with build_client(sessions, ChangeRecorder(), cors_origins=EDITOR) as client:
        router = client.app.router
        inner = router.middleware_stack
        client.routed = 0

        async def counting(scope, receive, send):
            if scope["type"] == "http":
                client.routed += 1
            await inner(scope, receive, send)

        router.middleware_stack = counting
        yield client


def _pipeline(client, headers) -> str:
    created = client.post(BASE, json={"pipeline": {"title": "Polled"}}, headers=headers)
    uuid = created.json()["pipeline"]["uuid"]
    client.post(
        f"{BASE}/{uuid}/nodes",
        json={"node": {"title": "Clip", "type": "asset", "asset": {"type": "video"}}},
        headers=headers,
    )
    return uuid


def _warm(client, headers, url):
    """GET until the cache serves it (its listener connects in the background)."""
    deadline = time.monotonic() + 10
    while True:
        before = client.routed
        response = client.get(url, headers=headers)
        if client.routed == before or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def test_a_cached_get_is_the_routes_answer_without_routing(app_client, admin_headers) -> None:
    uuid = _pipeline(app_client, admin_headers)
    url = f"{BASE}/{uuid}"
    headers = {**admin_headers, "Origin": EDITOR}
    routed = app_client.get(url, headers=headers)
    cached = _warm(app_client, headers, url)
    routed_count = app_client.routed
    again = app_client.get(url, headers=headers)
    assert app_client.routed == routed_count, "the cached GET went through the router"
    for response in (cached, again):
        assert response.status_code == 200
        assert response.content == routed.content
        for name in ("content-type", "content-length", "access-control-allow-origin"):
            assert response.headers[name] == routed.headers[name], name


def test_refusals_and_other_paths_still_go_to_the_route(
    app_client, sessions, admin_headers, user_headers
) -> None:
    uuid = _pipeline(app_client, admin_headers)
    url = f"{BASE}/{uuid}"
    app_client.get(BASE, headers=user_headers)  # the viewer's token is cached too (403)
    _warm(app_client, admin_headers, url)
    cases = [
        (url, user_headers, 403, "Admin access required"),
        (url, {"Authorization": "Bearer not-a-token"}, 401, "Invalid or revoked token"),
        (url, {}, 401, "Missing bearer token"),
        (url, {"Authorization": "Basic abc"}, 401, "Missing bearer token"),
        (f"{BASE}/not-a-uuid", admin_headers, 404, "Pipeline not found"),
        (f"{BASE}/{uuid.upper()}x", admin_headers, 404, "Pipeline not found"),
    ]
    for path, headers, status, message in cases:
        before = app_client.routed
        response = app_client.get(path, headers=headers)
        assert (response.status_code, response.json()["error"]["message"]) == (status, message)
        assert app_client.routed == before + 1, path
    # the same pipeline named in capitals is the same key: served from the cache
    before = app_client.routed
    assert app_client.get(f"{BASE}/{uuid.upper()}", headers=admin_headers).status_code == 200
    assert app_client.routed == before
    # a token created after the cache filled is verified by the route, then cached
    fresh = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    before = app_client.routed
    assert app_client.get(url, headers=fresh).status_code == 200
    assert app_client.routed == before + 1
