"""Sockets that resume, beat and coalesce; sign-in, cookies, API keys and the audit trail."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets

from loopline.domain.events import UtteranceEvent
from loopline.web.session_auth import COOKIE, SIGNIN_REFUSED
from tests.e2e.browser import DEMO_PASSWORD
from tests.e2e.conftest import Running, next_of, token_for

pytestmark = pytest.mark.e2e
ENV = {"LOOPLINE_DEMO_PASSWORD": DEMO_PASSWORD}


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "memory":
        return {"LOOPLINE_STATE": "memory", **ENV}
    url = request.getfixturevalue("redis_clean")
    return {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": url, **ENV}


def line(text: str, *, final: bool = True, call_id: str = "CL1") -> UtteranceEvent:
    return UtteranceEvent(
        type="utterance.final" if final else "utterance.partial",
        call_id=call_id,
        at=datetime.now(UTC),
        track="inbound",
        speaker="caller",
        text=text,
        start_ms=0,
        end_ms=10,
        agent_id="ana",
    )


def ws_url(node: Running, path: str) -> str:
    return node.base.replace("http", "ws", 1) + path


def bearer(role: str, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role, subject)}"}


async def texts_until(ws: Any, n: int, within: float = 5.0) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    async with asyncio.timeout(within):
        while len(out) < n:
            msg = json.loads(await ws.recv())
            if msg.get("type", "").startswith("utterance."):
                out.append((msg["id"], msg["text"]))
    return out


@pytest.mark.parametrize("ring", [5_000, 1])
async def test_a_dropped_agent_socket_resumes_without_loss(start_node, backend, ring) -> None:  # type: ignore[no-untyped-def]
    async with start_node(env=backend) as node:
        node.node.hub.resize_ring(ring)  # 1: what was missed must come back from the bus
        url = ws_url(node, "/ws/agent")
        async with websockets.connect(url, additional_headers=bearer("agent", "ana")) as ws:
            await next_of(ws, "hello")
            await node.node.bus.publish(line("before the drop"))
            [(last_id, text)] = await texts_until(ws, 1)
            assert text == "before the drop"
        while node.node.hub.agent_connected("ana"):  # noqa: ASYNC110 - no event for this
            await asyncio.sleep(0.01)
        for n in range(3):
            await node.node.bus.publish(line(f"missed {n}"))
        await node.node.bus.publish(
            line("someone else's", call_id="CL2").model_copy(update={"agent_id": "ben"})
        )
        async with websockets.connect(
            f"{url}?after={last_id}", additional_headers=bearer("agent", "ana")
        ) as ws:
            await next_of(ws, "hello")
            await node.node.bus.publish(line("live again"))
            got = await texts_until(ws, 4)
        assert [t for _, t in got] == ["missed 0", "missed 1", "missed 2", "live again"]
        ids = [i for i, _ in got]
        assert len(set(ids)) == 4 and last_id not in ids


async def test_bad_resume_point_is_refused(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node() as node:
        url = ws_url(node, "/ws/agent?after=yesterday")
        async with websockets.connect(url, additional_headers=bearer("agent", "ana")) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_an_idle_socket_gets_heartbeats(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node() as node:
        node.node.hub.heartbeat_s = 0.2
        url = ws_url(node, "/ws/agent")
        async with websockets.connect(url, additional_headers=bearer("agent", "ana")) as ws:
            hello = await next_of(ws, "hello")
            assert hello["heartbeat_s"] == 0.2
            beat = await next_of(ws, "heartbeat", within=2)
            assert beat["last_id"] is None


async def test_supervisor_frames_are_batched_and_interim_lines_merged(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node() as node:
        node.node.hub.tick_s = 0.3
        url = ws_url(node, "/ws/supervisor?batch=1")
        async with websockets.connect(url, additional_headers=bearer("supervisor", "sam")) as ws:
            await next_of(ws, "hello")
            bus = node.node.bus
            await bus.publish(line("first"))  # a quiet socket gets it at once (leading edge)
            first = json.loads(await ws.recv())
            assert first["type"] == "batch" and [e["text"] for e in first["events"]] == ["first"]
            words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
            for n in range(len(words)):
                await bus.publish(line(" ".join(words[: n + 1]), final=False))
            await bus.publish(line("one two three four five six seven eight nine ten."))
            for n in range(5):
                await bus.publish(line(" ".join(words[: n + 1]), final=False))
            events: list[dict[str, Any]] = []
            frames = 0
            async with asyncio.timeout(5):
                while not events or events[-1]["text"] != "one two three four five":
                    frame = json.loads(await ws.recv())
                    if frame["type"] == "batch":
                        frames += 1
                        events.extend(frame["events"])
        assert frames <= 3
        finals = [e["text"] for e in events if e["type"] == "utterance.final"]
        assert finals == ["one two three four five six seven eight nine ten."]
        assert len(events) < 10  # 16 published; the superseded interim lines never went out


async def _sign_in(node: Running, username: str, password: str) -> httpx.Response:
    return await node.http.post(
        f"{node.base}/signin",
        data={"username": username, "password": password, "next": "/agent"},
        headers={"Origin": node.base},
    )


async def test_sign_in_is_plain_about_failures_and_everything_is_audited(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(env=ENV) as node:
        wrong = await _sign_in(node, "ana", "not the password")
        unknown = await _sign_in(node, "nobody", DEMO_PASSWORD)
        for resp in (wrong, unknown):
            assert resp.status_code == 401
            assert SIGNIN_REFUSED in resp.text
            assert COOKIE not in resp.headers.get("set-cookie", "")
        assert node.node.access is not None
        gate_failures = await node.node.access.audit.recent(10)
        assert [e.action for e in gate_failures][:2] == ["signin.failed", "signin.failed"]

        ok = await _sign_in(node, "admin", DEMO_PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/agent"
        cookie = ok.cookies[COOKIE]
        assert "httponly" in ok.headers["set-cookie"].lower()
        assert "samesite=strict" in ok.headers["set-cookie"].lower()
        jar = {COOKIE: cookie}
        async with httpx.AsyncClient(base_url=node.base, cookies=jar) as browser:
            me = (await browser.get("/v1/me")).json()
            assert (me["role"], me["username"], me["via"]) == ("admin", "admin", "cookie")
            # A cookie-authenticated change from another site is refused.
            evil = await browser.post(
                "/v1/users",
                json={"username": "eve", "role": "admin", "password": "pw-eve-123456"},
                headers={"Origin": "http://evil.example"},
            )
            assert evil.status_code == 403
            made = await browser.post(
                "/v1/users",
                json={"username": "olga", "role": "supervisor", "password": "pw-olga-123456"},
                headers={"Origin": node.base},
            )
            assert made.status_code == 201
            audit = (await browser.get("/v1/audit")).json()
        assert audit["chain"]["ok"] is True
        actions = [e["action"] for e in audit["entries"]]
        assert actions[:2] == ["user.added", "signin"]
        assert "signin.failed" in actions


async def test_cookie_sockets_must_come_from_our_origin(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node(env=ENV) as node:
        cookie = (await _sign_in(node, "ana", DEMO_PASSWORD)).cookies[COOKIE]
        url = ws_url(node, "/ws/agent")
        headers = {"Cookie": f"{COOKIE}={cookie}"}
        async with websockets.connect(
            url, additional_headers=headers, origin="http://evil.example"
        ) as ws:  # type: ignore[arg-type]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        async with websockets.connect(url, additional_headers=headers, origin=node.base) as ws:  # type: ignore[arg-type]
            hello = await next_of(ws, "hello")
            assert hello["agent_id"] == "ana"


async def test_api_keys_open_the_api_until_revoked(start_node) -> None:  # type: ignore[no-untyped-def]
    async with start_node() as node:
        access = node.node.access
        assert access is not None
        key, full = await access.users.add_api_key("wallboard", "supervisor", datetime.now(UTC))
        headers = {"Authorization": f"Bearer {full}"}
        assert (await node.http.get(f"{node.base}/v1/agents", headers=headers)).status_code == 200
        await access.users.revoke_api_key(key.key_id, datetime.now(UTC))
        refused = await node.http.get(f"{node.base}/v1/agents", headers=headers)
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid API key"
