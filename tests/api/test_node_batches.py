"""Node creations arriving together in one pipeline share a transaction, answers apart."""

from __future__ import annotations

import asyncio

import httpx

from api.main import create_app
from tests.api.conftest import BASE, MISSING_UUID, ChangeRecorder, make_token
from vidpipe_dagster.settings import Settings


async def _post_all(app, headers, url: str, bodies: list[dict]) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await asyncio.gather(
            *(client.post(url, json={"node": body}, headers=headers) for body in bodies)
        )


def test_concurrent_creations_share_transactions_and_keep_their_own_answers(sessions):
    changes = ChangeRecorder()
    app = create_app(settings=Settings(), sessions=sessions, notify_change=changes)
    headers = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, list]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            made = await client.post(BASE, json={"pipeline": {"title": "P"}}, headers=headers)
            pipeline = made.json()["pipeline"]["uuid"]
            source = await client.post(
                f"{BASE}/{pipeline}/nodes",
                json={"node": {"title": "Src", "type": "asset", "asset": {"type": "video"}}},
                headers=headers,
            )
            src = source.json()["node"]["uuid"]
            bodies = [
                {"title": f"Merge {i}", "type": "merge-videos", "inputs": {"segments": [src, src]}}
                for i in range(20)
            ]
            bodies[7]["inputs"] = {"segments": [src, MISSING_UUID]}
            url = f"{BASE}/{pipeline}/nodes"
            answers = await _post_all(app, headers, url, bodies)
            alone = await client.post(url, json={"node": bodies[7]}, headers=headers)
            shown = await client.get(f"{BASE}/{pipeline}", headers=headers)
            return answers, alone, shown.json()["pipeline"]

    before = app.state.node_batches.batches
    answers, alone, shown = asyncio.run(scenario())

    refused = answers[7]
    assert refused.status_code == alone.status_code == 422
    assert refused.json() == alone.json()
    created = [a for i, a in enumerate(answers) if i != 7]
    assert all(a.status_code == 201 for a in created)
    assert [a.json()["node"]["title"] for a in created] == [
        f"Merge {i}" for i in range(20) if i != 7
    ]
    assert all(a.json()["node"]["is_valid"] for a in created)
    # 1 source + 19 merges, in the transactions they were created in (fewer than requests)
    assert app.state.node_batches.batches - before - 2 < 19
    titles = [n["title"] for n in shown["nodes"]]
    assert sorted(titles[1:]) == sorted(a.json()["node"]["title"] for a in created)
    stamps = [n["created_at"] for n in shown["nodes"]]
    assert stamps == sorted(stamps)
    assert shown["metadata"]["progress"]["total"] == 20
    assert shown["metadata"]["progress"]["pending"] == 20


def test_a_missing_pipeline_is_a_404_for_every_waiting_creation(sessions):
    app = create_app(settings=Settings(), sessions=sessions, notify_change=ChangeRecorder())
    headers = {"Authorization": f"Bearer {make_token(sessions, admin=True)}"}
    bodies = [{"title": f"N{i}", "type": "asset"} for i in range(5)]
    answers = asyncio.run(_post_all(app, headers, f"{BASE}/{MISSING_UUID}/nodes", bodies))
    assert [a.status_code for a in answers] == [404] * 5
    assert {a.json()["error"]["message"] for a in answers} == {"Pipeline not found"}
