"""The database going away mid-traffic and coming back, through a TCP proxy in front of the
real PostgreSQL: 503s in the error shape with ``Retry-After``, one log line per outage, and
recovery without a restart."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.errors import DatabaseOutage
from api.main import create_app
from tests.api.conftest import BASE, make_token
from tests.fixtures.tcp_proxy import TcpProxy
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.settings import Settings

THREADS = 6


def through(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) > 1 else host))


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    with TcpProxy(urlsplit(database_url).port or 5432) as running:
        yield running


@pytest.fixture
def proxied(sessions, database_url: str, proxy: TcpProxy) -> Iterator[TestClient]:
    """The app whose only way to the database is the proxy, with an admin token."""
    engine = make_engine(through(database_url, proxy.port))
    app = create_app(
        settings=Settings(), sessions=make_sessionmaker(engine), notify_change=lambda _p: None
    )
    token = make_token(sessions, admin=True)
    with TestClient(
        app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        yield client
    engine.dispose()


class Traffic:
    """Threads sending a mix of reads and writes until stopped; every response is kept."""

    def __init__(self, client: TestClient, pipeline: dict, node: dict) -> None:
        self.client = client
        self.pipeline, self.node = pipeline, node
        self.responses: list[tuple[float, str, int, dict, dict | None]] = []
        self.sent_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(i,)) for i in range(THREADS)]

    def _request(self, index: int, count: int):
        pipeline_url = f"{BASE}/{self.pipeline['uuid']}"
        choice = (index + count) % 5
        if choice == 0:
            return "list", self.client.get(BASE)
        if choice == 1:
            return "show", self.client.get(pipeline_url)
        if choice == 2:
            url = f"{pipeline_url}/nodes/{self.node['uuid']}"
            return "patch", self.client.patch(url, json={"node": {"title": f"Clip {count}"}})
        if choice == 3:
            return "create", self.client.post(BASE, json={"pipeline": {"title": f"P {count}"}})
        return "healthz", self.client.get("/healthz")

    def _loop(self, index: int) -> None:
        count = 0
        while not self._stop.is_set():
            sent = time.monotonic()
            name, response = self._request(index, count)
            count += 1
            try:
                body = response.json()
            except ValueError:
                body = None
            with self._lock:
                self.responses.append(
                    (time.monotonic(), name, response.status_code, dict(response.headers), body)
                )
                self.sent_at[id(self.responses[-1])] = sent
            time.sleep(0.005)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def since(self, moment: float) -> list[tuple[float, str, int, dict, dict | None]]:
        """Responses received after ``moment``."""
        with self._lock:
            return [r for r in self.responses if r[0] >= moment]


def wait_for(predicate, *, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_database_down_mid_traffic_answers_503_then_recovers(proxied, proxy, caplog) -> None:
    caplog.set_level(logging.INFO)
    pipeline = proxied.post(BASE, json={"pipeline": {"title": "Kept"}}).json()["pipeline"]
    node = proxied.post(
        f"{BASE}/{pipeline['uuid']}/nodes", json={"node": {"title": "Clip", "type": "asset"}}
    ).json()["node"]

    with Traffic(proxied, pipeline, node) as traffic:
        for _outage in range(2):
            up = time.monotonic()
            time.sleep(0.5)
            stopping = time.monotonic()  # requests answered while the proxy closes may fail
            proxy.stop()
            down = time.monotonic()
            assert wait_for(lambda d=down: len(traffic.since(d + 0.5)) >= 20, seconds=20)
            proxy.start()
            back = time.monotonic()
            assert wait_for(
                lambda b=back: any(r[2] == 200 for r in traffic.since(b)), seconds=20
            ), "no request succeeded after the database came back"
            recovered = next(r[0] for r in traffic.since(back) if r[2] == 200)
            # some answers after the recovery settled (slow on a loaded machine)
            assert wait_for(lambda r=recovered: len(traffic.since(r + 0.2)) >= 10, seconds=20), (
                "too few answers after the database came back"
            )
            while_up = traffic.since(up)
            # sent while the database was up (a request sent during the previous outage may
            # be answered 503 after it ended)
            before = [r for r in while_up if r[0] < stopping and traffic.sent_at[id(r)] >= up]
            during = [r for r in while_up if down + 0.5 <= r[0] < back]
            after = [r for r in while_up if r[0] >= recovered + 0.2]
            assert before and during and after
            assert {r[2] for r in before} <= {200, 201}, {r[2] for r in before}
            assert {r[2] for r in during} == {503}, {r[2] for r in during}
            assert {r[2] for r in after} <= {200, 201}, {r[2] for r in after}
    for _moment, name, status, headers, body in traffic.responses:
        assert status in (200, 201, 503), (name, status, body)
        if status == 503:
            assert set(body) == {"error"}, (name, body)
            assert body["error"]["type"] == "service_unavailable"
            assert "VIDPIPE_DATABASE_URL" in body["error"]["message"]
            assert headers.get("retry-after") == "5", (name, headers)
    assert {r[1] for r in traffic.responses if r[2] == 503} == {
        "list",
        "show",
        "patch",
        "create",
        "healthz",
    }

    messages = [r.getMessage() for r in caplog.records]
    assert sum("pipeline database unreachable" in m for m in messages) == 2, messages
    assert sum("pipeline database answering again" in m for m in messages) == 2, messages
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert len(noisy) == 2, [(r.name, r.getMessage()[:120]) for r in noisy]


def _began(outage: DatabaseOutage) -> Session:
    """A session whose transaction begins now, as the sessionmaker's hook stamps it."""
    session = Session()
    outage.stamp(session, session.begin())
    return session


def test_late_reports_do_not_make_the_outage_log_flap(caplog) -> None:
    """Reports reach the outage later than what they report. A connection refused just
    before the database came back, reported after a success, is part of that outage; a
    connection got just before the database went, reported after the first failure, does
    not end it. A request that began after a recovery and fails is a new outage."""
    caplog.set_level(logging.INFO, logger="api.errors")
    outage = DatabaseOutage()
    refused = ConnectionRefusedError("connection refused")
    early = _began(outage)  # got its connection before the outage
    began_during = time.monotonic()
    outage.down(refused, began=began_during)
    outage.up(early)  # ...and said so only now: no recovery
    outage.up(_began(outage))  # a transaction that began after the failure: recovery
    outage.down(refused, began=began_during)  # the straggler
    outage.up(_began(outage))
    outage.down(refused, began=time.monotonic())  # a new outage
    outage.up(_began(outage))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 2, messages
    assert sum("answering again" in m for m in messages) == 2, messages
    assert "1 request(s) answered 503" in messages[1], messages
