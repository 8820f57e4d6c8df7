"""The routed call end to end on a real uvicorn server: signed webhook → TwiML → screen-pop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from tests.e2e.conftest import next_of, token_for

pytestmark = pytest.mark.e2e

GRACE = "+14155550142"  # a VIP in the demo CRM
ALAN = "+12125550199"  # churn risk 0.82 in the demo CRM


def only_agent(agent_id: str, capacity: int = 1):  # type: ignore[no-untyped-def]
    """Keep one configured agent, who can take every demo route."""

    def mutate(data: dict[str, Any]) -> None:
        agent = next(a for a in data["agents"] if a["id"] == agent_id)
        agent["skills"] = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
        agent["languages"] = ["en", "es"]
        agent["capacity"] = capacity
        data["agents"] = [agent]

    return mutate


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "memory":
        return {"LOOPLINE_STATE": "memory"}
    url = request.getfixturevalue("redis_clean")
    return {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": url}


async def test_webhook_dials_available_agent_and_pops_screen(start_node, backend) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("ana"), env=backend) as node, node.agent("ana") as ws:
        resp = await node.voice("CA" + "1" * 32, GRACE)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/xml")
        twiml = resp.text
        assert '<Stream track="both_tracks" url="ws://127.0.0.1:' in twiml
        assert '<Parameter name="call_id" value="CL' in twiml
        assert "<Client>ana</Client>" in twiml
        assert "/twilio/dial-status?call_id=CL" in twiml

        pop = await next_of(ws, "call.offered", within=2)
        assert pop["caller"] == {"number": GRACE, "name": "Grace Hopper"}
        assert pop["crm"]["tier"] == "vip"
        assert pop["decision"]["policy"] == "vip"
        assert pop["decision"]["queue"] == "support"
        assert pop["intent"]["name"] == "unknown"
        assert pop["journey"] is None or pop["journey"]["confidence"] == "source_only"
        assert pop["call_id"] in twiml

        await ws.send(json.dumps({"type": "accept", "call_id": pop["call_id"]}))
        ack = await next_of(ws, "ack")
        assert ack["ok"] is True


async def test_full_agent_queues_second_call_then_dequeues_it(start_node, backend) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("ben"), env=backend) as node, node.agent("ben") as ws:
        first = await node.voice("CA" + "a" * 32, GRACE)
        pop1 = await next_of(ws, "call.offered")
        await ws.send(json.dumps({"type": "accept", "call_id": pop1["call_id"]}))
        assert (await next_of(ws, "ack"))["ok"]
        assert "<Client>ben</Client>" in first.text

        second = await node.voice("CA" + "b" * 32, ALAN)
        assert second.status_code == 200
        assert "<Enqueue " in second.text and ">retention</Enqueue>" in second.text
        assert "/twilio/wait?queue=retention" in second.text

        # The first call ends: Twilio reports the Dial completed, then the call.
        sid1 = "CA" + "a" * 32
        done = await node.signer.post(
            node.http,
            f"/twilio/dial-status?call_id={pop1['call_id']}",
            {"CallSid": sid1, "DialCallStatus": "completed", "DialCallDuration": "42"},
        )
        assert "<Hangup" in done.text
        await node.signer.post(
            node.http, "/twilio/status", {"CallSid": sid1, "CallStatus": "completed"}
        )

        # Ben is free: the waiting call is offered to him and redirected through Twilio's API.
        pop2 = await next_of(ws, "call.offered")
        assert pop2["caller"]["number"] == ALAN
        await node.rest.wait_for(1)
        req = node.rest.requests[-1]
        assert req["call_sid"] == "CA" + "b" * 32
        assert req["form"]["Url"].endswith(f"/twilio/connect?call_id={pop2['call_id']}")
        assert req["auth"].startswith("Basic ")

        # Twilio follows the redirect: the TwiML dials Ben, without starting a second stream.
        follow = await node.signer.post(node.http, req["form"]["Url"], {"CallSid": "CA" + "b" * 32})
        assert "<Client>ben</Client>" in follow.text
        assert "<Stream" not in follow.text


async def test_reject_moves_the_call_to_the_next_agent(start_node) -> None:  # type: ignore[no-untyped-def]
    def two_agents(data: dict[str, Any]) -> None:
        data["agents"] = [a for a in data["agents"] if a["id"] in ("ben", "emma")]
        data["policies"] = []

    async with start_node(two_agents) as node, node.agent("ben") as ben, node.agent("emma") as emma:
        resp = await node.voice("CA" + "c" * 32, "+15125550111")
        first_agent = "ben" if "<Client>ben</Client>" in resp.text else "emma"
        first_ws, other_ws = (ben, emma) if first_agent == "ben" else (emma, ben)
        pop = await next_of(first_ws, "call.offered")
        await first_ws.send(json.dumps({"type": "reject", "call_id": pop["call_id"]}))
        assert (await next_of(first_ws, "ack"))["ok"]
        pop2 = await next_of(other_ws, "call.offered")
        assert pop2["call_id"] == pop["call_id"]
        await node.rest.wait_for(1)
        assert node.rest.requests[-1]["form"]["Url"].endswith(f"call_id={pop['call_id']}")


async def test_no_answer_on_dial_tries_next_agent_in_the_action_response(start_node) -> None:  # type: ignore[no-untyped-def]
    def two_agents(data: dict[str, Any]) -> None:
        data["agents"] = [a for a in data["agents"] if a["id"] in ("ben", "emma")]
        data["policies"] = []

    async with start_node(two_agents) as node, node.agent("ben"), node.agent("emma"):
        resp = await node.voice("CA" + "d" * 32, "+15125550111")
        first = "ben" if "<Client>ben</Client>" in resp.text else "emma"
        call_id = resp.text.split('name="call_id" value="')[1].split('"')[0]
        nxt = await node.signer.post(
            node.http,
            f"/twilio/dial-status?call_id={call_id}",
            {"CallSid": "CA" + "d" * 32, "DialCallStatus": "no-answer"},
        )
        other = "emma" if first == "ben" else "ben"
        assert f"<Client>{other}</Client>" in nxt.text or "+15005550006" in nxt.text
        call = await node.http.get(
            f"{node.base}/v1/calls/{call_id}",
            headers={"Authorization": f"Bearer {token_for('supervisor', 'sam')}"},
        )
        assert call.status_code == 200


async def test_offer_not_accepted_in_time_goes_to_next_agent(start_node) -> None:  # type: ignore[no-untyped-def]
    def fast_expiry(data: dict[str, Any]) -> None:
        data["agents"] = [a for a in data["agents"] if a["id"] in ("ben", "emma")]
        data["policies"] = []
        data["routing"]["offer_timeout_s"] = 3

    async with (
        start_node(fast_expiry) as node,
        node.agent("ben") as ben,
        node.agent("emma") as emma,
    ):
        await node.voice("CA" + "e" * 32, "+15125550111")
        done, _ = await asyncio.wait(
            [
                asyncio.ensure_future(next_of(ben, "call.offered")),
                asyncio.ensure_future(next_of(emma, "call.offered")),
            ],
            return_when=asyncio.FIRST_COMPLETED,
        )
        first = done.pop().result()
        for t in _:
            t.cancel()
        await asyncio.gather(*_, return_exceptions=True)
        other_ws = emma if first["agent_id"] == "ben" else ben
        # Nobody accepts: after 3 s the sweeper moves the call on.
        second = await next_of(other_ws, "call.offered", within=8)
        assert second["call_id"] == first["call_id"]


async def test_unsigned_and_malformed_webhooks_change_nothing(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("ana")) as node, node.agent("ana"):
        params = {"CallSid": "CA" + "f" * 32, "From": GRACE, "To": "+15005550100"}
        unsigned = await node.http.post(f"{node.base}/twilio/voice", data=params)
        assert unsigned.status_code == 403
        wrong = await node.http.post(
            f"{node.base}/twilio/voice", data=params, headers={"X-Twilio-Signature": "bm9wZQ=="}
        )
        assert wrong.status_code == 403
        tampered_headers = node.signer.headers(f"{node.base}/twilio/voice", params)
        tampered = await node.http.post(
            f"{node.base}/twilio/voice", data={**params, "From": ALAN}, headers=tampered_headers
        )
        assert tampered.status_code == 403
        malformed = await node.signer.post(node.http, "/twilio/voice", {"From": GRACE})
        assert malformed.status_code == 400
        agents = await node.http.get(
            f"{node.base}/v1/agents",
            headers={"Authorization": f"Bearer {token_for('supervisor', 'sam')}"},
        )
        assert [a["reserved"] for a in agents.json()] == [[]]
        assert node.node.router.stats.received == 0


async def test_unknown_dialed_number_takes_default_route(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("emma")) as node, node.agent("emma") as ws:
        await node.voice("CA" + "9" * 32, "+15125550111", dialed="+15005550177")
        pop = await next_of(ws, "call.offered")
        assert pop["decision"]["policy"] == "default"
        assert pop["decision"]["queue"] == "support"


async def test_sockets_reject_bad_tokens_and_api_checks_roles(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("ana")) as node:
        ws_base = node.base.replace("http", "ws", 1)
        for url in (
            f"{ws_base}/ws/agent?token=garbage",
            f"{ws_base}/ws/supervisor",
            f"{ws_base}/ws/agent?token={token_for('agent', 'ana')}x",
        ):
            async with websockets.connect(url) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        assert (await node.http.get(f"{node.base}/v1/agents")).status_code == 401
        as_agent = await node.http.get(
            f"{node.base}/v1/agents",
            headers={"Authorization": f"Bearer {token_for('agent', 'ana')}"},
        )
        assert as_agent.status_code == 403
        health = await node.http.get(f"{node.base}/healthz")
        assert health.json()["status"] == "ok"


async def test_supervisor_sees_every_event_and_call_trail(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(only_agent("ana")) as node, node.agent("ana") as ws:
        ws_base = node.base.replace("http", "ws", 1)
        async with websockets.connect(
            f"{ws_base}/ws/supervisor?token={token_for('supervisor', 'sam')}"
        ) as sup:
            assert json.loads(await sup.recv())["type"] == "hello"
            await node.voice("CA" + "7" * 32, GRACE)
            pop = await next_of(ws, "call.offered")
            seen = [
                (await next_of(sup, t))["type"]
                for t in ("call.received", "call.routed", "call.offered")
            ]
            assert seen == ["call.received", "call.routed", "call.offered"]
        # The records writer catches up; the decision trail is served with the why.
        sup_h = {"Authorization": f"Bearer {token_for('supervisor', 'sam')}"}
        for _ in range(50):
            rec = await node.http.get(f"{node.base}/v1/calls/{pop['call_id']}", headers=sup_h)
            if rec.status_code == 200 and rec.json().get("decisions"):
                break
            await asyncio.sleep(0.05)
        body = rec.json()
        decision = body["decisions"][0]
        assert decision["policy"] == "vip"
        assert "crm.tier" in decision["expression"]
        assert decision["candidates"][0]["agent_id"] == "ana"
        other = await node.http.get(
            f"{node.base}/v1/calls/{pop['call_id']}",
            headers={"Authorization": f"Bearer {token_for('agent', 'ben')}"},
        )
        assert other.status_code == 403
        mine = await node.http.get(
            f"{node.base}/v1/calls/{pop['call_id']}",
            headers={"Authorization": f"Bearer {token_for('agent', 'ana')}"},
        )
        assert mine.status_code == 200


async def test_redis_unreachable_degrades_and_answers_with_fallback(start_node) -> None:  # type: ignore[no-untyped-def]
    from tests.support import free_port

    env = {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    async with start_node(only_agent("ana"), env=env) as node:
        health = (await node.http.get(f"{node.base}/healthz")).json()
        assert health["status"] == "degraded"
        assert any("live state" in r for r in health["reasons"])
        resp = await node.voice("CA" + "8" * 32, GRACE)
        assert resp.status_code == 200
        assert "<Dial><Number>+15005550006</Number></Dial>" in resp.text


async def test_redirect_after_the_agent_accepted_rings_that_agent_without_rerouting(
    start_node,  # type: ignore[no-untyped-def]
) -> None:
    """A dequeued call's agent may accept on the desktop before Twilio fetches the redirect;
    the fetch must dial that agent, not route the call again (a second decision and pop)."""
    async with start_node(only_agent("ben")) as node, node.agent("ben") as ws:
        await node.voice("CA" + "1" * 32, GRACE)
        pop1 = await next_of(ws, "call.offered")
        await ws.send(json.dumps({"type": "accept", "call_id": pop1["call_id"]}))
        assert (await next_of(ws, "ack"))["ok"]
        second = await node.voice("CA" + "2" * 32, ALAN)
        assert "<Enqueue " in second.text
        await node.signer.post(
            node.http,
            f"/twilio/dial-status?call_id={pop1['call_id']}",
            {"CallSid": "CA" + "1" * 32, "DialCallStatus": "completed"},
        )
        pop2 = await next_of(ws, "call.offered")
        await ws.send(json.dumps({"type": "accept", "call_id": pop2["call_id"]}))
        assert (await next_of(ws, "ack"))["ok"]

        await node.rest.wait_for(1)
        follow = await node.signer.post(
            node.http, node.rest.requests[-1]["form"]["Url"], {"CallSid": "CA" + "2" * 32}
        )
        assert "<Client>ben</Client>" in follow.text
        with pytest.raises(TimeoutError):
            await next_of(ws, "call.offered", within=0.5)  # no second screen-pop
        call = await node.node.state.get_call(pop2["call_id"])
        assert call is not None and call.status == "answered" and call.agent_id == "ben"
        assert node.node.router.stats.by_policy == {"vip": 1, "churn-risk": 1}
