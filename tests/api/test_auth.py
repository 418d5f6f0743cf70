"""Bearer-token auth on every route: 401 without a live token, 403 without admin, checked first."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from tests.api.conftest import BASE, MISSING_UUID, build_client, error, make_token
from vidpipe_dagster.db.models import ApiToken
from vidpipe_dagster.domain.tokens import hash_token

ROUTES = [
    ("GET", "{base}"),
    ("POST", "{base}"),
    ("GET", "{base}/{p}"),
    ("PATCH", "{base}/{p}"),
    ("DELETE", "{base}/{p}"),
    ("GET", "{base}/{p}/nodes"),
    ("POST", "{base}/{p}/nodes"),
    ("GET", "{base}/{p}/nodes/{n}"),
    ("PATCH", "{base}/{p}/nodes/{n}"),
    ("DELETE", "{base}/{p}/nodes/{n}"),
]
ROUTE_IDS = [f"{method} {path.replace('{base}', '')}" for method, path in ROUTES]
VALID_BODIES = {
    ("POST", "{base}"): {"pipeline": {"title": "T"}},
    ("PATCH", "{base}/{p}"): {"pipeline": {"title": "T"}},
    ("POST", "{base}/{p}/nodes"): {"node": {"title": "T", "type": "asset"}},
    ("PATCH", "{base}/{p}/nodes/{n}"): {"node": {"title": "T"}},
}


@pytest.fixture
def existing(api, changes):
    """A real pipeline and node, so only auth can stop the request."""
    pipeline = api.pipeline()
    node = api.node(pipeline)
    changes.calls = 0
    return pipeline["uuid"], node["uuid"]


def _url(path: str, pipeline_uuid: str, node_uuid: str) -> str:
    return path.format(base=BASE, p=pipeline_uuid, n=node_uuid)


def _call(client, method, path, pipeline_uuid, node_uuid, headers, **kwargs):
    if "json" not in kwargs and "content" not in kwargs and (method, path) in VALID_BODIES:
        kwargs["json"] = VALID_BODIES[(method, path)]
    return client.request(method, _url(path, pipeline_uuid, node_uuid), headers=headers, **kwargs)


def _assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == "unauthorized"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def _assert_forbidden(response) -> None:
    assert response.status_code == 403, response.text
    assert response.json() == error("forbidden", "Admin access required")


BAD_HEADERS = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer vp_not-a-real-token"},
    {"Authorization": "Token vp_not-a-real-token"},
]


def _revoked_token(sessions) -> str:
    token = make_token(sessions, admin=True)
    with sessions() as session, session.begin():
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == hash_token(token))
            .values(revoked_at=datetime.now(UTC))
        )
    return token


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_only_a_live_admin_token_passes(
    client, sessions, existing, user_headers, admin_headers, changes, method, path
):
    revoked = {"Authorization": f"Bearer {_revoked_token(sessions)}"}
    for headers in [*BAD_HEADERS, revoked]:
        _assert_unauthorized(_call(client, method, path, *existing, headers))
    _assert_forbidden(_call(client, method, path, *existing, user_headers))
    assert changes.calls == 0

    token = admin_headers["Authorization"].removeprefix("Bearer ")
    if method != "DELETE":
        first = _call(client, method, path, *existing, admin_headers)
        assert first.status_code in (200, 201), first.text
    response = _call(client, method, path, *existing, {"Authorization": f"bEaReR {token}"})
    assert response.status_code in (200, 201, 204), response.text


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
def test_auth_comes_before_not_found(client, user_headers, method, path):
    for target in (MISSING_UUID, "not-a-uuid"):
        _assert_unauthorized(_call(client, method, path, target, target, {}))
        _assert_unauthorized(
            _call(client, method, path, target, target, {"Authorization": "Bearer vp_nope"})
        )
        _assert_forbidden(_call(client, method, path, target, target, user_headers))


WRITE_ROUTES = [route for route in ROUTES if route in VALID_BODIES]
WRITE_IDS = [f"{method} {path.replace('{base}', '')}" for method, path in WRITE_ROUTES]


MALFORMED_BODIES = [b"{not json", b"[]", b'"pipeline"', b"", b"\xff\xfe\x00", b'{"other": {}}']


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES, ids=WRITE_IDS)
def test_auth_comes_before_malformed_body(client, existing, user_headers, method, path, changes):
    plain = {"Content-Type": "application/json"}
    for body in MALFORMED_BODIES:
        for headers in (plain, {**plain, "Authorization": "Bearer vp_nope"}):
            _assert_unauthorized(_call(client, method, path, *existing, headers, content=body))
        _assert_forbidden(
            _call(client, method, path, *existing, {**plain, **user_headers}, content=body)
        )
    assert changes.calls == 0


def test_auth_comes_before_oversized_body(sessions, user_headers, changes):
    with build_client(sessions, changes, max_body_bytes=100) as small:
        body = b'{"pipeline": {"title": "' + b"x" * 1000 + b'"}}'
        headers = {"Content-Type": "application/json"}
        _assert_unauthorized(small.post(BASE, content=body, headers=headers))
        _assert_forbidden(small.post(BASE, content=body, headers={**headers, **user_headers}))


def test_auth_comes_before_bad_query(client, user_headers):
    _assert_unauthorized(client.get(BASE, params={"page": "0", "per": "abc"}))
    _assert_forbidden(client.get(BASE, params={"page": "0", "per": "abc"}, headers=user_headers))


def test_tokens_are_stored_as_hashes(sessions, admin_headers):
    token = admin_headers["Authorization"].removeprefix("Bearer ")
    with sessions() as session:
        stored = session.query(ApiToken.token_sha256).all()
    assert [row.token_sha256 for row in stored] == [hash_token(token)]
    assert token not in stored[0].token_sha256
