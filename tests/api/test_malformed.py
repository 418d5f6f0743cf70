"""Malformed requests of every kind get a 4xx in the error shape, never a 500 or a trace."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.api.conftest import BASE, build_client
from vidpipe_dagster.db.models import Node, Pipeline

JSON = {"Content-Type": "application/json"}


def _assert_error(response, status: int, error_type: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if message is not None:
        assert body["error"]["message"] == message
    for marker in ("Traceback", 'File "', "sqlalchemy", "psycopg", "pydantic"):
        assert marker not in response.text


@pytest.fixture
def targets(api, changes):
    """URL, wrapper key and a valid inner body for each of the four write routes."""
    pipeline = api.pipeline("Untouched")
    node = api.node(pipeline, title="Untouched")
    changes.calls = 0
    return [
        ("POST", BASE, "pipeline", {"title": "T"}),
        ("PATCH", f"{BASE}/{pipeline['uuid']}", "pipeline", {"title": "T"}),
        ("POST", f"{BASE}/{pipeline['uuid']}/nodes", "node", {"title": "T", "type": "asset"}),
        ("PATCH", f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}", "node", {"title": "T"}),
    ]


def _unchanged(client, headers, sessions, changes) -> None:
    assert changes.calls == 0
    with sessions() as session:
        assert session.scalars(select(Pipeline.title)).all() == ["Untouched"]
        assert session.scalars(select(Node.title)).all() == ["Untouched"]


NOT_JSON = [
    b"{not json",
    b'{"pipeline": {"title": "T"}',
    b'{"pipeline": {"title": "T"}} trailing',
    b"\xff\xfe\xfd",
    b'{"pipeline": {"title": "caf\xe9"}}',
    b"{'pipeline': {}}",
    b'{"a": 1' + b"0" * 5000 + b"}",
]
NOT_WRAPPED = [
    b"",
    b"   \n",
    b"[]",
    b'[{"pipeline": {}}]',
    b'"pipeline"',
    b"42",
    b"null",
    b"true",
    b"{}",
    b'{"title": "T", "type": "asset"}',
]
WRAPPED_NOT_OBJECT = [b"null", b'"T"', b"[]", b"[1]", b"7", b"false"]


def test_bad_json_is_400(client, admin_headers, sessions, changes, targets):
    for method, url, _key, _valid in targets:
        for raw in NOT_JSON:
            response = client.request(method, url, content=raw, headers={**JSON, **admin_headers})
            _assert_error(response, 400, "bad_request", "Request body is not valid JSON")
    _unchanged(client, admin_headers, sessions, changes)


def test_body_not_wrapped_in_an_object_is_400(client, admin_headers, sessions, changes, targets):
    for method, url, key, _valid in targets:
        message = f"Request body must be a JSON object with a '{key}' object"
        other = b'{"node": {}}' if key == "pipeline" else b'{"pipeline": {}}'
        for raw in [*NOT_WRAPPED, other]:
            response = client.request(method, url, content=raw, headers={**JSON, **admin_headers})
            _assert_error(response, 400, "bad_request", message)
        for inner in WRAPPED_NOT_OBJECT:
            raw = b'{"' + key.encode() + b'": ' + inner + b"}"
            response = client.request(method, url, content=raw, headers={**JSON, **admin_headers})
            _assert_error(response, 400, "bad_request", message)
    _unchanged(client, admin_headers, sessions, changes)


STRING = "Input should be a valid string"
OBJECT = "Input should be a valid dictionary"
WRONG_TYPES = {
    "pipeline": [
        ({"title": 5}, f"title: {STRING}"),
        ({"title": ["T"]}, f"title: {STRING}"),
        ({"title": "T", "version": True}, f"version: {STRING}"),
        ({"title": "T", "config": [1]}, f"config: {OBJECT}"),
        ({"title": "T", "config": "x"}, f"config: {OBJECT}"),
        ({"title": "T", "metadata": 3}, f"metadata: {OBJECT}"),
    ],
    "node": [
        ({"title": 5, "type": "asset"}, f"title: {STRING}"),
        ({"title": "T", "type": "asset", "inputs": "x"}, f"inputs: {OBJECT}"),
        ({"title": "T", "type": "asset", "inputs": ["a"]}, f"inputs: {OBJECT}"),
        ({"title": "T", "type": "asset", "config": [1]}, f"config: {OBJECT}"),
        ({"title": "T", "type": "asset", "asset": "x.mp4"}, f"asset: {OBJECT}"),
    ],
}
NULL_TITLE = {"POST": f"title: {STRING}", "PATCH": "Title can't be null"}


def test_wrong_json_types_are_422(client, admin_headers, sessions, changes, targets):
    for method, url, key, valid in targets:
        cases = [*WRONG_TYPES[key], ({**valid, "title": None}, NULL_TITLE[method])]
        for fields, message in cases:
            response = client.request(method, url, json={key: fields}, headers=admin_headers)
            _assert_error(response, 422, "validation_error", message)
    _unchanged(client, admin_headers, sessions, changes)


def test_node_type_of_wrong_json_type_is_422_on_create(client, admin_headers, api):
    pipeline = api.pipeline()
    response = client.post(
        f"{BASE}/{pipeline['uuid']}/nodes",
        json={"node": {"title": "T", "type": ["asset"]}},
        headers=admin_headers,
    )
    _assert_error(response, 422, "validation_error", f"type: {STRING}")


def test_several_wrong_fields_are_all_named(client, admin_headers, api):
    response = client.post(
        BASE, json={"pipeline": {"title": 1, "config": []}}, headers=admin_headers
    )
    _assert_error(
        response,
        422,
        "validation_error",
        "title: Input should be a valid string, config: Input should be a valid dictionary",
    )


NOT_FINITE = "Numbers in the request body must be finite"
NUL = "Text in the request body cannot contain NUL characters"
SURROGATE = "Text in the request body must be valid Unicode"
UNSTORABLE = [
    (
        b'{"title": "T", "type": "asset", "config": {"x": NaN}}',
        400,
        "Request body is not valid JSON",
    ),
    (b'{"title": "T", "type": "asset", "config": {"x": Infinity}}', 400, None),
    (b'{"title": "T", "type": "asset", "config": {"x": -Infinity}}', 400, None),
    (b'{"title": "T", "type": "asset", "config": {"x": 1e999}}', 422, NOT_FINITE),
    (b'{"title": "T", "type": "asset", "config": {"x": [-1.5e400]}}', 422, NOT_FINITE),
    (b'{"title": "T\\u0000", "type": "asset"}', 422, NUL),
    (b'{"title": "T", "type": "asset", "config": {"x": "a\\u0000b"}}', 422, NUL),
    (b'{"title": "T", "type": "asset", "config": {"k\\u0000": 1}}', 422, NUL),
    (b'{"title": "\\ud800", "type": "asset"}', 422, SURROGATE),
    (b'{"title": "T", "type": "asset", "config": {"x": ["\\udfff"]}}', 422, SURROGATE),
    (b'{"title": "T", "type": "asset", "config": {"\\ud800": 1}}', 422, SURROGATE),
]


def test_values_the_database_cannot_store_are_rejected(
    client, admin_headers, sessions, changes, targets
):
    for method, url, key, _valid in targets:
        for inner, status, message in UNSTORABLE:
            raw = b'{"' + key.encode() + b'": ' + inner + b"}"
            response = client.request(method, url, content=raw, headers={**JSON, **admin_headers})
            error_type = "bad_request" if status == 400 else "validation_error"
            _assert_error(response, status, error_type, message or "Request body is not valid JSON")
    _unchanged(client, admin_headers, sessions, changes)


def test_valid_unicode_and_big_numbers_round_trip(client, admin_headers):
    config = {"emoji": "\U0001f3ac", "accents": "caf\u00e9", "big": 10**30, "small": -1.5e-300}
    response = client.post(
        BASE,
        json={"pipeline": {"title": "\u00c9pisode \U0001f3ac", "config": config}},
        headers=admin_headers,
    )
    assert response.status_code == 201
    assert response.json()["pipeline"]["title"] == "\u00c9pisode \U0001f3ac"
    assert response.json()["pipeline"]["config"] == config


def test_deeply_nested_json_is_rejected(client, admin_headers, sessions, changes, targets):
    for method, url, key, _valid in targets:
        for depth in (70, 5_000, 200_000):
            raw = b'{"' + key.encode() + b'": {"title": "T", "config": {"c": ' + b"[" * depth
            raw += b"]" * depth + b"}}}"
            response = client.request(method, url, content=raw, headers={**JSON, **admin_headers})
            _assert_error(
                response, 400, "bad_request", "Request body is nested deeper than 64 levels"
            )
    _unchanged(client, admin_headers, sessions, changes)


def test_moderate_nesting_is_stored(client, admin_headers):
    nested: dict = {"leaf": [1, {"k": "v"}]}
    for level in range(50):
        nested = {f"l{level}": nested}
    response = client.post(
        BASE, json={"pipeline": {"title": "T", "config": nested}}, headers=admin_headers
    )
    assert response.status_code == 201
    assert response.json()["pipeline"]["config"] == nested


def test_oversized_body_is_413(sessions, admin_headers, changes):
    with build_client(sessions, changes, max_body_bytes=2_000) as client:
        padding = "x" * 2_000
        response = client.post(
            BASE, json={"pipeline": {"title": "T", "config": {"p": padding}}}, headers=admin_headers
        )
        _assert_error(response, 413, "payload_too_large", "Request body is larger than 2000 bytes")

        def chunks():
            yield b'{"pipeline": {"title": "T", "config": {"p": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}}}'

        streamed = client.post(BASE, content=chunks(), headers={**JSON, **admin_headers})
        assert "content-length" not in {k.lower() for k in streamed.request.headers}
        _assert_error(streamed, 413, "payload_too_large", "Request body is larger than 2000 bytes")

        lying = client.post(
            BASE,
            content=b'{"pipeline": {"title": "' + b"z" * 3000 + b'"}}',
            headers={**JSON, **admin_headers, "Content-Length": "10"},
        )
        _assert_error(lying, 413, "payload_too_large", "Request body is larger than 2000 bytes")

        fits = client.post(BASE, json={"pipeline": {"title": "T"}}, headers=admin_headers)
        assert fits.status_code == 201
    with sessions() as session:
        assert session.scalar(select(func.count(Pipeline.id))) == 1


def test_default_body_limit_is_one_megabyte(client, admin_headers):
    big = {"pipeline": {"title": "T", "config": {"p": "x" * 1_000_001}}}
    _assert_error(
        client.post(BASE, json=big, headers=admin_headers),
        413,
        "payload_too_large",
        "Request body is larger than 1000000 bytes",
    )


def test_non_json_content_type_is_not_a_server_error(client, admin_headers):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = client.post(
            BASE, content=b"title=T", headers={**admin_headers, "Content-Type": content_type}
        )
        _assert_error(response, 400, "bad_request")


def test_routes_and_methods_that_do_not_exist(client, admin_headers):
    _assert_error(client.get("/nope", headers=admin_headers), 404, "not_found", "Route not found")
    _assert_error(client.get(f"{BASE}/a/b/c/d", headers=admin_headers), 404, "not_found")
    _assert_error(client.put(BASE, json={}, headers=admin_headers), 405, "method_not_allowed")


def test_a_client_that_hangs_up_mid_body_leaves_no_traceback(
    sessions, admin_headers, caplog
) -> None:
    import logging
    import socket
    import threading
    import time

    import uvicorn

    from api.main import create_app
    from tests.fixtures.webserver import free_port
    from vidpipe_dagster.settings import Settings

    app = create_app(settings=Settings(), sessions=sessions, notify_change=lambda uuid: None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="info", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    caplog.set_level(logging.INFO)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /v1/admin/video_production/pipelines HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: {admin_headers['Authorization']}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                + b'{"pipeline": {"ti'
            )
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "Traceback" not in caplog.text
