"""Paid submissions per click under fault injection: how many jobs one execution creates.

For each of HeyGen, Veo, Runway and ElevenLabs (fake servers on loopback) and each fault, one
node is executed once through an in-process Dagster run on a fresh PostgreSQL database
(``VIDPIPE_BENCH_PG_ADMIN_URL``), with 4 HTTP attempts per call, 3 step retries and a 1 s
timeout, then, when it failed, once more as the retry schedule would (tag
``vidpipe/retry``). It prints the
requests the fake received, the jobs it made of them (requests that reached its handler:
paid work) and how the node ended. The baseline, in the
same run, sends the same request through the same client as a read (retried like any other
call, as every call was before submissions had their own rule): what one click cost before,
per step attempt.

    python benchmarks/paid_submissions.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAULTS = ("hang_after_accept", "drop_after_accept", "server_error_500")


def main() -> None:
    """Run every provider x fault and print the table."""
    import dagster as dg

    from benchmarks.sensor_tick import drop_database, make_database
    from tests.dagster.builders import NodeRow, add_pipeline
    from tests.fakes.elevenlabs import FakeElevenLabs
    from tests.fakes.heygen import FakeHeyGen
    from tests.fakes.runway import FakeRunway
    from tests.fakes.veo import FakeVeo
    from tests.provider_jobs.conftest import node_row, run_in_process

    url, name = make_database()
    fakes = {
        "heygen": FakeHeyGen(),
        "veo3": FakeVeo(),
        "runway": FakeRunway(),
        "elevenlabs": FakeElevenLabs(),
    }
    for fake in fakes.values():
        fake.hang_seconds = 2
        fake.start()
    os.environ.update(
        {
            "VIDPIPE_HEYGEN_API_KEY": fakes["heygen"].api_key,
            "VIDPIPE_HEYGEN_BASE_URL": fakes["heygen"].url,
            "VIDPIPE_GEMINI_API_KEY": fakes["veo3"].api_key,
            "VIDPIPE_GEMINI_BASE_URL": fakes["veo3"].base_url,
            "VIDPIPE_RUNWAY_API_KEY": fakes["runway"].api_key,
            "VIDPIPE_RUNWAY_BASE_URL": fakes["runway"].url,
            "VIDPIPE_ELEVENLABS_API_KEY": fakes["elevenlabs"].api_key,
            "VIDPIPE_ELEVENLABS_BASE_URL": fakes["elevenlabs"].url,
            "VIDPIPE_PROVIDER_MAX_ATTEMPTS": "4",
            "VIDPIPE_PROVIDER_STEP_RETRIES": "3",
            "VIDPIPE_PROVIDER_RETRY_BASE_SECONDS": "0",
            "VIDPIPE_PROVIDER_TIMEOUT_SECONDS": "1",
        }
    )
    from vidpipe_dagster.db.session import make_engine, make_sessionmaker
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource
    from vidpipe_dagster.resources.providers.retry import RetryPolicy

    cases = {
        "heygen": (
            NodeRow(
                "paid",
                "talking-head",
                config={"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hi."},
            ),
            "/v3/videos",
        ),
        "veo3": (
            NodeRow("paid", "generate-animation", config={"provider": "veo3", "prompt": "sea"}),
            ":predictLongRunning",
        ),
        "runway": (
            NodeRow(
                "paid",
                "generate-animation",
                config={"provider": "runway", "model": "gen4.5", "prompt": "sea", "duration": 5},
            ),
            "/v1/text_to_video",
        ),
        "elevenlabs": (
            NodeRow(
                "paid",
                "generate-voiceover",
                config={"provider": "elevenlabs", "voiceId": "v1", "script": "Hello."},
            ),
            "/v1/text-to-speech/",
        ),
    }
    sessions = make_sessionmaker(make_engine(url))
    rows = []
    try:
        with tempfile.TemporaryDirectory() as home:
            resource = VidpipeResource(
                database_url=url, storage_url=(Path(home) / "s").as_uri(), home=home
            )
            for provider, (row, path) in cases.items():
                fake = fakes[provider]
                for fault in FAULTS:
                    baseline = baseline_sends(
                        resource,
                        provider=provider,
                        fake=fake,
                        path=path,
                        fault=fault,
                        policy=RetryPolicy(max_attempts=4),
                    )
                    inject(fake, fault=fault, path=path)
                    before = len(fake.requests_to(path, method="POST"))
                    made = len(fake.handled_to(path, method="POST"))
                    ids = add_pipeline(
                        sessions, name=f"{provider}-{fault}-{uuid.uuid4().hex[:6]}", nodes=[row]
                    )
                    from vidpipe_dagster.assets.asset_keys import key_of

                    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["paid"])
                    with dg.instance_for_test() as instance:
                        run_in_process(sessions, resource, instance, [key])
                        if node_row(sessions, ids["paid"]).status == "failed":
                            run_in_process(
                                sessions, resource, instance, [key], tags={"vidpipe/retry": "true"}
                            )
                    sent = len(fake.requests_to(path, method="POST")) - before
                    jobs = len(fake.handled_to(path, method="POST")) - made
                    node = node_row(sessions, ids["paid"])
                    rows.append((provider, fault, baseline, (sent, jobs), node.status))
                    fake.reset()
    finally:
        for fake in fakes.values():
            fake.stop()
        drop_database(name)
    print(
        "provider   | fault             | before, one step attempt: requests / jobs "
        "| now, click + scheduled retry: requests / jobs | node"
    )
    for provider, fault, (b_sent, b_jobs), (sent, jobs), status in rows:
        print(
            f"{provider:<10} | {fault:<17} | {b_sent:>3} / {b_jobs:<3} | "
            f"{sent:>3} / {jobs:<3} | {status}"
        )


def inject(fake, *, fault: str, path: str) -> None:
    """Queue ``fault`` on the fake's submission path."""
    if fault == "server_error_500":
        fake.server_error(500, times=20, path=path)
    else:
        getattr(fake, fault)(times=20, path=path)


def baseline_sends(resource, provider: str, fake, path: str, fault: str, policy) -> tuple[int, int]:
    """``(requests, jobs)`` of one submission retried like a read (the former rule)."""
    import httpx

    from vidpipe_dagster.resources.providers.errors import ProviderError

    client = resource.provider_clients().client(provider)
    inject(fake, fault=fault, path=path)
    before = len(fake.requests_to(path, method="POST"))
    target = {
        "heygen": ("/v3/videos", {"type": "avatar", "avatar_id": "a", "script": "Hi."}),
        "veo3": (
            "/models/veo-3.1-generate-preview:predictLongRunning",
            {"instances": [{"prompt": "sea"}], "parameters": {}},
        ),
        "runway": ("/v1/text_to_video", {"model": "gen4.5", "promptText": "sea", "duration": 5}),
        "elevenlabs": ("/v1/text-to-speech/v1", {"text": "Hello."}),
    }[provider]
    try:
        client.request("POST", target[0], json=target[1], retry=policy, ok=(200,), operation="read")
    except (ProviderError, httpx.HTTPError):
        pass
    sent = len(fake.requests_to(path, method="POST")) - before
    jobs = len(fake.handled_to(path, method="POST"))
    fake.reset()
    return sent, jobs


if __name__ == "__main__":
    main()
