"""Data-subject rights on a real server with Redis live state: a caller with a web journey,
a call, a transcript and a conversion still waiting in the outbox is exported, then erased;
nothing about them is left in SQL, in Redis or in the outbox, and replaying their events or a
late webhook does not bring them back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import text

from loopline.domain.events import Redaction, UtteranceEvent
from loopline.records.engine import create_records_engine
from tests.e2e.conftest import Running, next_of, token_for
from tests.support import free_port

pytestmark = pytest.mark.e2e

CALLER = "+14085550188"
SID = "CA" + "7" * 32
VISITOR = "visitor-erase-me"
SESSION = "session-erase-me"
LANDING = "http://127.0.0.1/demo/site/landing?utm_source=google&gclid=erase-gclid"
ADMIN = {"Authorization": f"Bearer {token_for('admin', 'root')}"}


def one_agent_pending_outbox(data: dict[str, Any]) -> None:
    agent = next(a for a in data["agents"] if a["id"] == "ana")
    agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
    data["agents"] = [agent]
    # Nothing listens there and the retry is far off: the conversion stays pending.
    data["attribution"] = {
        "settle_s": 0.1,
        "disposition_grace_s": 0,
        "conversions": [{"outcome": "sale", "name": "Phone sale", "value": 300}],
        "destinations": [
            {
                "kind": "webhook",
                "name": "crm",
                "url": f"http://127.0.0.1:{free_port()}/hook",
                "timeout_s": 1,
                "backoff_base_s": 3600,
                "backoff_max_s": 3600,
            }
        ],
    }


async def a_call_with_everything(node: Running) -> str:
    touch = {
        "visitor_id": VISITOR,
        "session_id": SESSION,
        "landing": LANDING,
        "touches": [{"kind": "pageview", "url": LANDING, "title": "Harbor"}],
    }
    leased = await node.http.post(node.base + "/v1/touches", content=json.dumps(touch).encode())
    assert leased.status_code == 200, leased.text
    async with node.agent("ana") as ws:
        await node.voice(SID, CALLER, dialed=leased.json()["number"])
        pop = await next_of(ws, "call.offered")
        call_id: str = pop["call_id"]
        assert pop["journey"]["session_id"] == SESSION
        await ws.send(json.dumps({"type": "accept", "call_id": call_id}))
        assert (await next_of(ws, "ack"))["ok"]
        await node.node.bus.publish(
            UtteranceEvent(
                type="utterance.final",
                call_id=call_id,
                at=node.node.clock.now(),
                track="inbound",
                speaker="caller",
                text="my card is [CARD] and I want the gold plan",
                start_ms=0,
                end_ms=2000,
                redactions=[Redaction(kind="card", start_ms=500, end_ms=1500)],
            )
        )
        await node.signer.post(
            node.http,
            f"/twilio/dial-status?call_id={call_id}",
            {"CallSid": SID, "DialCallStatus": "completed", "DialCallDuration": "60"},
        )
    await node.signer.post(node.http, "/twilio/status", {"CallSid": SID, "CallStatus": "completed"})
    sold = await node.http.post(
        f"{node.base}/v1/calls/{call_id}/disposition",
        json={"outcome": "sale", "value": 300},
        headers={"Authorization": f"Bearer {token_for('agent', 'ana')}"},
    )
    assert sold.status_code == 200, sold.text
    return call_id


async def _until(check: Any, tries: int = 200) -> None:
    for _ in range(tries):  # the records writer and the outbox catch up in their own time
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the records never caught up")


async def _sql(url: str, query: str, **params: Any) -> int:
    engine = await create_records_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text(query), params)).scalar_one())
    finally:
        await engine.dispose()


async def _redis_mentions(redis_url: str, needles: list[str]) -> list[str]:
    """Every Redis key whose name or value mentions one of the needles."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    found: list[str] = []
    try:
        async for key in client.scan_iter(count=500):
            kind = await client.type(key)
            if kind == "string":
                values = [await client.get(key) or ""]
            elif kind == "list":
                values = await client.lrange(key, 0, -1)
            elif kind == "set":
                values = list(await client.smembers(key))
            elif kind == "zset":
                values = list(await client.zrange(key, 0, -1))
            elif kind == "hash":
                values = [f"{k}={v}" for k, v in (await client.hgetall(key)).items()]
            elif kind == "stream":
                values = [json.dumps(f) for _, f in await client.xrange(key)]
            else:
                values = []
            blob = key + "\n" + "\n".join(values)
            found.extend(f"{key}:{n}" for n in needles if n in blob)
    finally:
        await client.aclose()
    return found


async def test_export_then_erase_leaves_nothing_and_nothing_comes_back(
    start_node, redis_clean: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env = {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": redis_clean}
    records = f"sqlite+aiosqlite:///{tmp_path}/records.db"
    async with start_node(one_agent_pending_outbox, env=env) as node:
        call_id = await a_call_with_everything(node)

        async def outbox_pending() -> bool:
            return (
                await _sql(records, "SELECT count(*) FROM outbox WHERE status = 'pending'") == 1
                and await _sql(records, "SELECT count(*) FROM utterances") == 1
                and await _sql(records, "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")
                == 1
            )

        await _until(outbox_pending)
        # The bus keeps the call's events; replaying them later must not recreate anything.
        kept = [e async for e in _events_of(node, call_id)]
        assert kept, "the call's events should be on the bus before erasure"

        body = json.dumps({"phone": "(408) 555-0188"})
        agent = {"Authorization": f"Bearer {token_for('agent', 'ana')}"}
        refused = await node.http.request(
            "GET", node.base + "/v1/subjects/export", content=body, headers=agent
        )
        assert refused.status_code == 403
        in_url = await node.http.get(
            node.base + "/v1/subjects/export?phone=4085550188", headers=ADMIN
        )
        assert in_url.status_code == 422

        exported = await node.http.request(
            "GET", node.base + "/v1/subjects/export", content=body, headers=ADMIN
        )
        assert exported.status_code == 200, exported.text
        data = exported.json()
        assert [c["call_id"] for c in data["calls"]] == [call_id]
        assert data["calls"][0]["caller_number"] == CALLER
        assert data["transcripts"][call_id][0]["text"].startswith("my card is [CARD]")
        assert [j["session_id"] for j in data["journeys"]] == [SESSION]
        assert data["journeys"][0]["touches"][0]["url"] == LANDING
        assert data["visitor_ids"] == [VISITOR]
        [conversion] = data["conversions"]
        assert conversion["deliveries"][0]["status"] == "pending"
        assert data["outcomes"][0]["label"] == "sale"

        erased = await node.http.request(
            "DELETE", node.base + "/v1/subjects", content=body, headers=ADMIN
        )
        assert erased.status_code == 200, erased.text
        counts = erased.json()["erased"]
        assert counts["calls"] == 1 and counts["transcripts"] == 1 and counts["outbox"] == 1

        for table in ("calls", "utterances", "conversions", "outbox", "call_events", "outcomes"):
            assert await _sql(records, f"SELECT count(*) FROM {table}") == 0, table
        assert await _sql(records, "SELECT count(*) FROM tombstones") >= 3
        leftovers = await _redis_mentions(redis_clean, [CALLER, call_id, VISITOR, SESSION, SID])
        # The webhook's once-only claim (the provider's call id, for an hour) stays: a late
        # retry of the voice webhook then finds it taken and no call, and hangs up.
        assert [k for k in leftovers if ":once:voice:" not in k] == []

        # Replays: the bus events again, a late status webhook, the outbox replay, the pipeline.
        for event_id, event in kept:
            assert not await node.node.records.apply(f"replay-{event_id}", event)
        late = await node.signer.post(
            node.http, "/twilio/status", {"CallSid": SID, "CallStatus": "completed"}
        )
        assert late.status_code == 200
        boss = {"Authorization": f"Bearer {token_for('supervisor', 'sam')}"}
        replayed = await node.http.post(f"{node.base}/v1/outbox/replay", json={}, headers=boss)
        assert replayed.json() == {"replayed": 0}
        assert node.node.attribution is not None
        assert not await node.node.attribution.pipeline.process(call_id)
        await asyncio.sleep(0.3)
        for table in ("calls", "utterances", "conversions", "outbox", "call_events"):
            assert await _sql(records, f"SELECT count(*) FROM {table}") == 0, table

        again = await node.http.request(
            "GET", node.base + "/v1/subjects/export", content=body, headers=ADMIN
        )
        assert again.json()["calls"] == [] and again.json()["journeys"] == []

        assert node.node.access is not None
        actions = [e.action for e in await node.node.access.audit.recent(50)]
        assert {"subject.export", "subject.erase", "config.loaded"} <= set(actions)
        entries = await node.node.access.audit.recent(50)
        assert all(CALLER not in json.dumps(e.model_dump(mode="json")) for e in entries)
        assert (await node.node.access.audit.verify()).ok


async def _events_of(node: Running, call_id: str):  # type: ignore[no-untyped-def]
    async with node.node.bus.subscribe(after="0-0") as sub:
        try:
            async with asyncio.timeout(1.0):
                async for event_id, event in sub:
                    if event.call_id == call_id:
                        yield event_id, event
        except TimeoutError:
            return
