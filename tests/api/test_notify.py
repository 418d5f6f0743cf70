"""``notify_change`` runs after every committed write, and never after a failed or read request."""

from __future__ import annotations

from sqlalchemy import select

from tests.api.conftest import BASE, MISSING_UUID, build_client
from vidpipe_dagster.db.models import Node, Pipeline


class SnapshotRecorder:
    """Records, at each call, what a separate session sees: so a call before commit shows."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.seen: list[tuple[list[str], list[str]]] = []
        self.pipelines: list[str] = []

    def __call__(self, pipeline_uuid: str) -> None:
        self.pipelines.append(pipeline_uuid)
        with self.sessions() as session:
            self.seen.append(
                (
                    sorted(session.scalars(select(Pipeline.title))),
                    sorted(session.scalars(select(Node.title))),
                )
            )


def test_each_successful_write_notifies_after_commit(sessions, admin_headers):
    recorder = SnapshotRecorder(sessions)
    with build_client(sessions, recorder) as client:
        h = admin_headers
        pipeline = client.post(BASE, json={"pipeline": {"title": "P"}}, headers=h).json()
        p = f"{BASE}/{pipeline['pipeline']['uuid']}"
        assert recorder.seen == [(["P"], [])]

        assert client.patch(p, json={"pipeline": {"title": "P2"}}, headers=h).status_code == 200
        assert recorder.seen[-1] == (["P2"], [])

        node = client.post(
            f"{p}/nodes", json={"node": {"title": "N", "type": "asset"}}, headers=h
        ).json()["node"]
        n = f"{p}/nodes/{node['uuid']}"
        assert recorder.seen[-1] == (["P2"], ["N"])

        assert client.patch(n, json={"node": {"title": "N2"}}, headers=h).status_code == 200
        assert recorder.seen[-1] == (["P2"], ["N2"])

        assert client.delete(n, headers=h).status_code == 204
        assert recorder.seen[-1] == (["P2"], [])

        assert client.delete(p, headers=h).status_code == 204
        assert recorder.seen[-1] == ([], [])
        assert len(recorder.seen) == 6
        # each notification names the pipeline written, so only its location reloads
        assert recorder.pipelines == [pipeline["pipeline"]["uuid"]] * 6


def test_reads_and_failed_writes_do_not_notify(client, api, admin_headers, user_headers, changes):
    pipeline = api.pipeline()
    node = api.node(pipeline)
    changes.calls = 0
    p = f"{BASE}/{pipeline['uuid']}"
    n = f"{p}/nodes/{node['uuid']}"
    h = admin_headers
    requests = [
        ("GET", BASE, None, h, 200),
        ("GET", p, None, h, 200),
        ("GET", f"{p}/nodes", None, h, 200),
        ("GET", n, None, h, 200),
        ("POST", BASE, {"pipeline": {"title": ""}}, h, 422),
        ("POST", BASE, {"pipeline": {"title": "T"}}, user_headers, 403),
        ("POST", BASE, {"pipeline": {"title": "T"}}, {}, 401),
        ("PATCH", f"{BASE}/{MISSING_UUID}", {"pipeline": {"title": "T"}}, h, 404),
        ("PATCH", p, {"pipeline": {"config": None}}, h, 422),
        ("DELETE", f"{BASE}/{MISSING_UUID}", None, h, 404),
        ("POST", f"{p}/nodes", {"node": {"title": "T", "type": "nope"}}, h, 422),
        ("POST", f"{p}/nodes", {"other": {}}, h, 400),
        ("POST", f"{BASE}/{MISSING_UUID}/nodes", {"node": {"title": "T", "type": "asset"}}, h, 404),
        ("PATCH", n, {"node": {"inputs": {"x": []}}}, h, 422),
        ("PATCH", f"{p}/nodes/{MISSING_UUID}", {"node": {"title": "T"}}, h, 404),
        ("DELETE", f"{p}/nodes/{MISSING_UUID}", None, h, 404),
        ("DELETE", f"{p}/nodes/nope", None, h, 404),
    ]
    for method, url, body, headers, status in requests:
        response = client.request(method, url, json=body, headers=headers)
        assert response.status_code == status, (method, url, response.text)
        assert changes.calls == 0, (method, url)
