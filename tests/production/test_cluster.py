"""Production-shaped, end to end: every role its own process on its own host.

Hosts (network namespaces with private file systems, see ``hosts.py``): the API; the Dagster
webserver; the daemon; one ``dagster code-server`` per shard (two shards), whose run workers run
on the same host. Shared services live on the bridge of the root namespace, as they would on a
network: PostgreSQL (vidpipe's tables and the dagster-postgres instance, through a relay), S3
(moto's server), the Lambda Invoke API running the real FFmpeg handlers
(``VIDPIPE_LAMBDA_MODE=aws``, boto3's real ``Invoke``), and the fake providers. The demo
pipeline, with paid providers, is built and executed through the API and finished by the
daemon's sensor ticks and by a HeyGen webhook delivered to the API.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lambdas.ffmpeg import probe
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.heygen import FakeHeyGen
from tests.fakes.lambda_service import FakeLambda
from tests.fakes.remotion import FakeRemotionLambda
from tests.fakes.veo import FakeVeo
from tests.fixtures.database import ADMIN_URL
from tests.fixtures.tcp_relay import TcpRelay
from tests.fixtures.webserver import free_port
from tests.production import hosts

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "vidpipe-production"
WEBHOOK_SECRET = "whsec-production-heygen"
TOKEN_NAME = "production-test"
LOCATIONS = ("vidpipe_0", "vidpipe_1")
DEADLINE_SECONDS = 420

pytestmark = pytest.mark.skipif(
    hosts.available() is not None, reason=f"no network namespaces here: {hosts.available()}"
)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[hosts.Network]:
    net = hosts.Network(root=tmp_path)
    try:
        yield net
    finally:
        net.close()


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two empty PostgreSQL databases: vidpipe's tables and the Dagster instance."""
    names = (f"vidpipe_prod_{uuid.uuid4().hex[:8]}", f"dagster_prod_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield names
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Services:
    """The shared services, listening on the bridge address of the root namespace."""

    def __init__(self, gateway: str, databases: tuple[str, str]) -> None:
        from moto.server import ThreadedMotoServer

        pg = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
        self.relay = TcpRelay(
            listen=(gateway, 0), target=(pg.get("host", "127.0.0.1"), int(pg.get("port", 5432)))
        ).start()
        self.pg_user = pg.get("user", "postgres")
        self.vidpipe_db, self.dagster_db = databases
        self.s3_port = free_port()
        self.moto = ThreadedMotoServer(ip_address=gateway, port=self.s3_port, verbose=False)
        self.moto.start()
        self.s3_url = f"http://{gateway}:{self.s3_port}"
        self.heygen = FakeHeyGen()
        self.elevenlabs = FakeElevenLabs()
        self.veo = FakeVeo()
        self.remotion = FakeRemotionLambda()
        self.lambdas = FakeLambda()
        self.fakes = (self.heygen, self.elevenlabs, self.veo, self.remotion, self.lambdas)
        for fake in self.fakes:
            fake.host = gateway
            fake.start()
        # HeyGen finishes only through its webhook; Veo and Remotion through the sensor.
        self.heygen.jobs.outcome = "never"
        self.veo.jobs.steps = 1
        self.remotion.jobs.steps = 1

    def s3(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self, *, api: str, webserver: str) -> dict[str, str]:
        """What every vidpipe and Dagster process gets (no host's files, no loopback)."""
        relay_host, relay_port = self.relay.address
        return {
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_LAMBDA": self.lambdas.url,
            "VIDPIPE_DATABASE_URL": (
                f"postgresql://{self.pg_user}@{relay_host}:{relay_port}/{self.vidpipe_db}"
            ),
            "VIDPIPE_STORAGE_URL": f"s3://{BUCKET}/media",
            "VIDPIPE_S3_ENDPOINT_URL": self.s3_url,
            "VIDPIPE_LAMBDA_MODE": "aws",
            "VIDPIPE_DAGSTER_URL": f"http://{webserver}:3000",
            "VIDPIPE_DAGSTER_SHARDS": "2",
            "VIDPIPE_WEBHOOK_BASE_URL": f"http://{api}:8000",
            "VIDPIPE_HEYGEN_API_KEY": self.heygen.api_key,
            "VIDPIPE_HEYGEN_BASE_URL": self.heygen.url,
            "VIDPIPE_HEYGEN_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "VIDPIPE_ELEVENLABS_API_KEY": self.elevenlabs.api_key,
            "VIDPIPE_ELEVENLABS_BASE_URL": self.elevenlabs.url,
            "VIDPIPE_GEMINI_API_KEY": self.veo.api_key,
            "VIDPIPE_GEMINI_BASE_URL": self.veo.base_url,
            "VIDPIPE_REMOTION_FUNCTION_NAME": self.remotion.function_name,
            "VIDPIPE_REMOTION_LAMBDA_ENDPOINT_URL": self.remotion.url,
            "VIDPIPE_REMOTION_S3_ENDPOINT_URL": self.remotion.url,
            "VIDPIPE_PROVIDER_POLL_INTERVAL_SECONDS": "5",
            "VIDPIPE_PROVIDER_RETRY_BASE_SECONDS": "1",
            "DAGSTER_PG_USERNAME": self.pg_user,
            "DAGSTER_PG_PASSWORD": "",
            "DAGSTER_PG_HOST": relay_host,
            "DAGSTER_PG_PORT": str(relay_port),
            "DAGSTER_PG_DB": self.dagster_db,
        }

    def close(self) -> None:
        for fake in self.fakes:
            fake.stop()
        self.moto.stop()
        self.relay.stop()


@pytest.fixture
def services(
    network: hosts.Network, databases: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    running = Services(network.gateway, databases)
    running.s3().create_bucket(Bucket=BUCKET)
    # the fake Lambda runs the handlers in this process: give them a function's environment
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, running.env(api="", webserver="")[name])
    monkeypatch.setenv("VIDPIPE_S3_ENDPOINT_URL", running.s3_url)
    try:
        yield running
    finally:
        running.close()


def _dagster_home(host: hosts.Host) -> Path:
    home = host.home / "dagster"
    host.run(["mkdir", "-p", str(home)], env={})
    host.write(home / "dagster.yaml", (ROOT / "deploy" / "dagster.yaml").read_text())
    return home


def _wait(what: str, check, *, seconds: float, processes: list[hosts.Process]) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for process in processes:
            if process.popen.poll() is not None:
                pytest.fail(f"{process.name} exited while waiting for {what}:\n{process.tail()}")
        value = check()
        if value:
            return value
        time.sleep(0.5)
    logs = "\n\n".join(f"--- {p.name}\n{p.tail()}" for p in processes)
    pytest.fail(f"timed out waiting for {what}\n{logs}")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def _loaded(dagster_url: str) -> bool:
    """True once every shard's location is loaded (code servers take a while to answer)."""
    try:
        body = httpx.post(f"{dagster_url}/graphql", json={"query": LOCATIONS_QUERY}, timeout=10)
        entries = body.json()["data"]["workspaceOrError"]["locationEntries"]
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return False
    states = {entry["name"]: entry for entry in entries}
    return all(
        name in states
        and states[name]["loadStatus"] == "LOADED"
        and (states[name]["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
        for name in LOCATIONS
    )


class Cluster:
    """The vidpipe roles started on their hosts."""

    def __init__(self, network: hosts.Network, services: Services) -> None:
        self.api_host = network.add_host("api")
        self.web_host = network.add_host("web")
        self.daemon_host = network.add_host("daemon")
        self.shard_hosts = [network.add_host(f"cs{i}") for i in range(2)]
        self.env = services.env(api=self.api_host.address, webserver=self.web_host.address)
        self.api_url = f"http://{self.api_host.address}:8000"
        self.dagster_url = f"http://{self.web_host.address}:3000"
        self.processes: list[hosts.Process] = []

    def migrate_and_token(self) -> str:
        env = {**self.env, "VIDPIPE_HOME": str(self.api_host.home)}
        upgraded = self.api_host.run(["vidpipe", "db", "upgrade"], env=env)
        assert upgraded.returncode == 0, upgraded.stderr
        created = self.api_host.run(["vidpipe", "tokens", "create", TOKEN_NAME, "--admin"], env=env)
        assert created.returncode == 0, created.stderr
        return created.stdout.strip().splitlines()[-1]

    def start(self) -> None:
        workspace_env = {
            "VIDPIPE_CODE_SERVER_0_HOST": self.shard_hosts[0].address,
            "VIDPIPE_CODE_SERVER_1_HOST": self.shard_hosts[1].address,
        }
        for shard, host in enumerate(self.shard_hosts):
            env = {
                **self.env,
                "VIDPIPE_HOME": str(host.home / "vidpipe"),
                "DAGSTER_HOME": str(_dagster_home(host)),
                "VIDPIPE_DAGSTER_SHARD": str(shard),
            }
            command = [
                "dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000",
                "--module-name", "vidpipe_dagster.definitions",
                "--location-name", LOCATIONS[shard],
            ]  # fmt: skip
            self.processes.append(host.spawn("code-server", command, env=env))
        for host, name, command in (
            (
                self.web_host,
                "webserver",
                ["dagster-webserver", "--host", "0.0.0.0", "--port", "3000"],
            ),
            (self.daemon_host, "daemon", ["dagster-daemon", "run"]),
        ):
            workspace = host.home / "workspace.yaml"
            host.write(workspace, (ROOT / "deploy" / "workspace.yaml").read_text())
            env = {
                **self.env,
                **workspace_env,
                "VIDPIPE_HOME": str(host.home / "vidpipe"),
                "DAGSTER_HOME": str(_dagster_home(host)),
            }
            self.processes.append(
                host.spawn(name, [*command, "--workspace", str(workspace)], env=env)
            )
        api_env = {**self.env, "VIDPIPE_HOME": str(self.api_host.home / "vidpipe")}
        self.processes.append(
            self.api_host.spawn(
                "api", ["vidpipe", "api", "--host", "0.0.0.0", "--port", "8000"], env=api_env
            )
        )
        _wait(
            "the API",
            lambda: _healthy(f"{self.api_url}/healthz"),
            seconds=60,
            processes=self.processes,
        )
        _wait(
            "both code locations to load",
            lambda: _loaded(self.dagster_url),
            seconds=180,
            processes=self.processes,
        )

    def logs(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.tail(60)}" for p in self.processes)


SCRIPT = (
    "Welcome back. In this lesson we look at loops. A loop repeats a block of code until a "
    "condition tells it to stop."
)


def _build_demo(api: httpx.Client) -> dict[str, str]:
    """The demo pipeline with paid providers, node by node through the REST API."""
    created = api.post(
        "/pipelines",
        json={"pipeline": {"title": "Production demo", "config": {"budget": 100}}},
    )
    assert created.status_code == 201, created.text
    pipeline = created.json()["pipeline"]["uuid"]
    ids: dict[str, str] = {"pipeline": pipeline}

    def node(name: str, title: str, node_type: str, **fields: Any) -> None:
        answer = api.post(
            f"/pipelines/{pipeline}/nodes",
            json={"node": {"title": title, "type": node_type, **fields}},
        )
        assert answer.status_code == 201, answer.text
        ids[name] = answer.json()["node"]["uuid"]

    node("script", "Script", "asset", asset={"type": "text", "content": SCRIPT})
    props = json.dumps({"code": "print('hi')"})
    node("code", "Code sample", "asset", asset={"type": "text", "content": props})
    node("prompt", "Prompt", "asset", asset={"type": "text", "content": "A robot stacking blocks"})
    node(
        "voiceover",
        "Voiceover",
        "generate-voiceover",
        inputs={"script": [ids["script"]]},
        config={"provider": "elevenlabs", "voiceId": "voice-1"},
    )
    node(
        "talking_head",
        "Talking head",
        "talking-head",
        inputs={"script": [ids["voiceover"]]},
        config={"provider": "heygen", "avatarId": "avatar-1"},
    )
    node(
        "render",
        "Code render",
        "render-code",
        inputs={"config": [ids["code"]]},
        config={"provider": "remotion", "compositionId": "Main", "serveUrl": "https://site"},
    )
    node(
        "animation",
        "Animation",
        "generate-animation",
        inputs={"prompt": [ids["prompt"]]},
        config={"provider": "veo3", "duration": 4},
    )
    node("merge", "Merge", "merge-videos", inputs={"segments": [ids["animation"], ids["render"]]})
    node(
        "mix",
        "Narration",
        "mix-audio",
        inputs={"video": [ids["merge"]], "audio": [ids["voiceover"]]},
        config={"mode": "replace"},
    )
    node(
        "final",
        "Final cut",
        "compose-video",
        inputs={"background": [ids["mix"]], "overlay": [ids["talking_head"]]},
        config={"position": "bottom-right", "scale": 0.3},
    )
    return ids


def _deliver_heygen_webhooks(services: Services, api_url: str, delivered: set[str]) -> None:
    for job_id in list(services.heygen.jobs.jobs):
        if job_id in delivered:
            continue
        body, headers = services.heygen.webhook(job_id, secret=WEBHOOK_SECRET)
        answer = httpx.post(f"{api_url}/v1/webhooks/heygen", content=body, headers=headers)
        assert answer.status_code < 300, answer.text
        delivered.add(job_id)


def test_demo_pipeline_runs_on_separate_hosts(
    network: hosts.Network, services: Services, tmp_path: Path
) -> None:
    cluster = Cluster(network, services)
    token = cluster.migrate_and_token()
    cluster.start()
    api = httpx.Client(
        base_url=f"{cluster.api_url}/v1/admin/video_production",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    ids = _build_demo(api)
    pipeline = ids["pipeline"]

    started = _wait(
        "the execute request to be accepted",
        lambda: _execute(api, pipeline),
        seconds=90,
        processes=cluster.processes,
    )
    assert started.status_code == 202, started.text

    delivered: set[str] = set()
    deadline = time.monotonic() + DEADLINE_SECONDS
    nodes: dict[str, Any] = {}
    while time.monotonic() < deadline:
        _deliver_heygen_webhooks(services, cluster.api_url, delivered)
        nodes = {n["uuid"]: n for n in api.get(f"/pipelines/{pipeline}/nodes").json()["nodes"]}
        failed = {
            n["title"]: n["metadata"].get("error")
            for n in nodes.values()
            if n["status"] == "failed"
        }
        assert not failed, f"{failed}\n{cluster.logs()}"
        if all(n["status"] == "completed" for n in nodes.values()):
            break
        time.sleep(2)
    else:
        statuses = {n["title"]: (n["status"], n["metadata"].get("stage")) for n in nodes.values()}
        pytest.fail(f"not finished in {DEADLINE_SECONDS} s: {statuses}\n{cluster.logs()}")

    by_name = {name: nodes[node_uuid] for name, node_uuid in ids.items() if name != "pipeline"}
    final = by_name["final"]["output"]
    local = tmp_path / "final.mp4"
    services.s3().download_file(BUCKET, f"media/{final['s3_key']}", str(local))
    assert probe(local).duration == pytest.approx(final["duration"], abs=0.2)
    assert by_name["talking_head"]["metadata"].get("completed_by") == "webhook"
    assert by_name["animation"]["metadata"].get("completed_by") == "sensor"
    invoked = sorted(name for name, _ in services.lambdas.invocations)
    assert invoked == sorted(
        ["vidpipe-video-merger", "vidpipe-audio-mixer", "vidpipe-video-composer"]
    )
    assert len(services.heygen.jobs.jobs) == 1
    assert len(services.veo.jobs.jobs) == 1
    assert len(services.remotion.jobs.jobs) == 1
    assert len(services.elevenlabs.requests_to(r"/v1/text-to-speech/.*", "POST")) == 1


def _execute(api: httpx.Client, pipeline: str) -> httpx.Response | None:
    answer = api.post(f"/pipelines/{pipeline}/execute", json={"only": "all"})
    return None if answer.status_code == 503 else answer


def test_local_storage_across_hosts_is_refused(network: hosts.Network, services: Services) -> None:
    cluster = Cluster(network, services)
    cluster.migrate_and_token()
    # the same path on every host, a different directory on each (as on separate machines)
    storage = {"VIDPIPE_STORAGE_URL": (cluster.api_host.machine / "storage").as_uri()}
    api_env = {**cluster.env, **storage, "VIDPIPE_HOME": str(cluster.api_host.home)}
    cluster.processes.append(
        cluster.api_host.spawn(
            "api", ["vidpipe", "api", "--host", "0.0.0.0", "--port", "8000"], env=api_env
        )
    )
    _wait(
        "the API",
        lambda: _healthy(f"{cluster.api_url}/healthz"),
        seconds=60,
        processes=cluster.processes,
    )
    validate = ["dagster", "definitions", "validate", "-m", "vidpipe_dagster.definitions"]
    shard_host = cluster.shard_hosts[0]
    shard_env = {
        **cluster.env,
        **storage,
        "VIDPIPE_HOME": str(shard_host.home),
        "VIDPIPE_DAGSTER_SHARD": "0",
    }

    refused = shard_host.run(validate, env=shard_env, timeout=180)
    same_host = cluster.api_host.run(validate, env={**shard_env, **api_env}, timeout=180)

    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        f"VIDPIPE_STORAGE_URL={storage['VIDPIPE_STORAGE_URL']} is not the media directory" in output
    )
    assert "VIDPIPE_STORAGE_URL=s3://bucket/prefix" in output
    assert same_host.returncode == 0, same_host.stdout + same_host.stderr
