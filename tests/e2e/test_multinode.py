"""Two real `loopline serve` processes on one Redis and one records database.

500 concurrent calls with 20 agents of capacity 1 must each be routed or queued exactly once,
and no agent may ever hold two calls (checked afterwards from the records). A node killed with
SIGKILL must lose none of the calls it queued: the other node serves them from Redis.

Everything outside the nodes is simulated here as Twilio and the agents would do it: signed
webhooks, agents on real websockets who accept every offer, and a Twilio REST stand-in whose
redirects are followed by fetching the signed /twilio/connect URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import ssl
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
import yaml
from sqlalchemy.engine import make_url

from loopline.domain.calls import CallStatus
from loopline.records import SqlRecords
from loopline.records.models import CallRecord, OfferOutcome
from tests.e2e.conftest import TOKEN_SECRET, token_for
from tests.records.records_databases import postgres_base_url, postgres_database
from tests.support import ACCOUNT_SID, AUTH_TOKEN, RestRecorder, TwilioSigner, free_port, serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
CALL_ID = re.compile(r'name="call_id" value="(CL[0-9a-f]+)"')
CLIENT = re.compile(r"<Client>([^<]+)</Client>")


def deployment(agent_ids: list[str], records_url: str) -> dict[str, Any]:
    return {
        "deployment": {"name": "multinode test"},
        "state": "redis",
        "records_url": records_url,
        "routing": {"offer_timeout_s": 60, "fallback_number": "+15005550006"},
        "queues": [{"name": "support"}],
        "agents": [
            {
                "id": agent_id,
                "name": f"Agent {agent_id}",
                "skills": {"support": 3},
                "endpoint": {"kind": "client", "address": agent_id},
            }
            for agent_id in agent_ids
        ],
        # Two priorities, so the queue's order is exercised too.
        "policies": [
            {
                "name": "west",
                "when": 'caller.region == "CA"',
                "route": {"queue": "support", "priority": 50, "strategy": "round-robin"},
            }
        ],
        "default_route": {"queue": "support", "priority": 10, "strategy": "longest-idle"},
    }


@dataclass
class NodeProcess:
    name: str
    port: int
    log: Path
    proc: asyncio.subprocess.Process

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


@dataclass
class Cluster:
    tmp: Path
    redis_url: str
    rest: RestRecorder
    rest_url: str
    records_url: str
    config: Path
    nodes: list[NodeProcess] = field(default_factory=list)

    async def start(self, name: str) -> NodeProcess:
        port = free_port()
        env = {
            **os.environ,
            "LOOPLINE_STATE": "redis",
            "LOOPLINE_REDIS_URL": self.redis_url,
            "LOOPLINE_RECORDS_URL": self.records_url,
            "LOOPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "LOOPLINE_TOKEN_SECRET": TOKEN_SECRET,
            "LOOPLINE_TWILIO_API_BASE_URL": self.rest_url,
            "LOOPLINE_NODE_ID": name,
            "PYTHONUNBUFFERED": "1",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        }
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "loopline.cli", "serve", "--config", str(self.config)),
                *("--port", str(port), "--log-level", "warning"),
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        node = NodeProcess(name, port, log, proc)
        self.nodes.append(node)
        await self._ready(node)
        return node

    async def _ready(self, node: NodeProcess, timeout_s: float = 30) -> None:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(int(timeout_s * 10)):
                if node.proc.returncode is not None:
                    pytest.fail(f"{node.name} exited at start:\n{node.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(node.base + "/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        pytest.fail(f"{node.name} did not become ready:\n{node.tail()}")

    @staticmethod
    async def kill(node: NodeProcess) -> None:
        if node.proc.returncode is None:
            node.proc.send_signal(signal.SIGKILL)
        await node.proc.wait()

    async def stop_all(self) -> None:
        for node in self.nodes:
            if node.proc.returncode is None:
                node.proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                await asyncio.wait_for(node.proc.wait(), 15)
            except TimeoutError:
                await self.kill(node)


@contextlib.asynccontextmanager
async def cluster(
    tmp_path: Path, redis_url: str, agent_ids: list[str], records_url: str | None = None
) -> AsyncIterator[Cluster]:
    rest = RestRecorder()
    rest_port = free_port()
    records_url = records_url or f"sqlite+aiosqlite:///{tmp_path}/records.db"
    config = tmp_path / "loopline.yaml"
    config.write_text(yaml.safe_dump(deployment(agent_ids, records_url)))
    async with serve(rest.app(), rest_port):
        c = Cluster(tmp_path, redis_url, rest, f"http://127.0.0.1:{rest_port}", records_url, config)
        try:
            yield c
        finally:
            await c.stop_all()


@contextlib.asynccontextmanager
async def records_database(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL database when the test server answers (as a deployment of several
    nodes would use), else one SQLite file shared by both nodes."""
    dsn = make_url(postgres_base_url()).set(drivername="postgresql", database="postgres")
    try:
        probe = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        yield f"sqlite+aiosqlite:///{tmp_path}/records.db"
        return
    await probe.close()
    async with postgres_database() as url:
        yield url


class Telephony:
    """Twilio's side: signed webhooks to the nodes, and redirects followed as Twilio does.

    Requests go through several small clients, a call always through the same one: httpx's
    pool scans its waiting requests against its connections on every change, which with
    hundreds of both costs more CPU than the nodes under test.
    """

    def __init__(self, clients: list[httpx.AsyncClient], rest: RestRecorder) -> None:
        self.clients = clients
        self.rest = rest
        self.followed: list[tuple[str, str]] = []  # (provider call id, TwiML)
        self.follow_errors: list[str] = []
        self._dialed: dict[str, asyncio.Future[None]] = {}

    def dialed(self, sid: str) -> asyncio.Future[None]:
        """Done once a redirect of the call was followed to a <Dial>: the agent's line rings
        only then, so a queued call's conversation starts no sooner."""
        future = self._dialed.get(sid)
        if future is None:
            future = self._dialed[sid] = asyncio.get_running_loop().create_future()
        return future

    async def post(self, base: str, path_or_url: str, params: dict[str, str]) -> httpx.Response:
        http = self.clients[hash(params["CallSid"]) % len(self.clients)]
        return await TwilioSigner(base).post(http, path_or_url, params)

    async def voice(self, base: str, sid: str, caller: str) -> httpx.Response:
        params = {
            "CallSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": caller,
            "To": "+15005550100",
            "CallStatus": "ringing",
        }
        return await self.post(base, "/twilio/voice", params)

    async def hang_up(self, base: str, sid: str, call_id: str) -> None:
        done = await self.post(
            base,
            f"/twilio/dial-status?call_id={call_id}",
            {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": "1"},
        )
        assert done.status_code == 200 and "<Hangup" in done.text, done.text
        status = await self.post(
            base, "/twilio/status", {"CallSid": sid, "CallStatus": "completed"}
        )
        assert status.status_code == 200

    async def follow_redirects(self) -> None:
        """Fetch every redirect's URL as Twilio would, until cancelled."""
        seen = 0
        async with asyncio.TaskGroup() as tg:
            while True:
                await self.rest.arrived.wait()
                self.rest.arrived.clear()
                while seen < len(self.rest.requests):
                    tg.create_task(self._follow(self.rest.requests[seen]))
                    seen += 1

    async def _follow(self, request: dict[str, Any]) -> None:
        url = request["form"]["Url"]
        base = url.split("/twilio/")[0]
        resp = await self.post(base, url, {"CallSid": request["call_sid"]})
        if resp.status_code != 200 or "<Dial" not in resp.text:
            self.follow_errors.append(f"{resp.status_code} {resp.text[:200]}")
        self.followed.append((request["call_sid"], resp.text))
        dialed = self.dialed(request["call_sid"])
        if not dialed.done():
            dialed.set_result(None)


@contextlib.asynccontextmanager
async def clients(count: int, *, connections: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    tls = ssl.create_default_context()  # unused (plain http), but made once, not per client
    # Idle connections are dropped after 2 s, before uvicorn's 5 s keep-alive closes them from
    # its side: with both at 5 s a request could go out on a socket the node was closing
    # (httpx.ReadError, seen once in a full run).
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=2.0
    )
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, limits=limits, verify=tls)
            )
            for _ in range(count)
        ]


class Agents:
    """Agents on real websockets who go available and accept every offer."""

    def __init__(self) -> None:
        self._accepted: dict[str, asyncio.Future[str]] = {}
        self.offers: dict[str, list[str]] = defaultdict(list)  # agent -> call ids offered
        self.ready = 0

    def accepted(self, call_id: str) -> asyncio.Future[str]:
        future = self._accepted.get(call_id)
        if future is None:
            future = self._accepted[call_id] = asyncio.get_running_loop().create_future()
        return future

    async def run(self, base: str, agent_id: str, ready: asyncio.Event, count: int) -> None:
        url = base.replace("http", "ws", 1) + "/ws/agent"
        headers = {"Authorization": f"Bearer {token_for('agent', agent_id)}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "state", "state": "available"}))
            async for raw in ws:
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "ack" and msg.get("of") == "state":
                    self.ready += 1
                    if self.ready == count:
                        ready.set()
                elif kind == "call.offered":
                    self.offers[agent_id].append(msg["call_id"])
                    await ws.send(json.dumps({"type": "accept", "call_id": msg["call_id"]}))
                elif kind == "ack" and msg.get("of") == "accept":
                    assert msg["ok"], msg
                    future = self.accepted(msg["call_id"])
                    if not future.done():
                        future.set_result(agent_id)


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result


async def wait_for_records(url: str, sids: set[str], timeout_s: float) -> list[CallRecord]:
    """Every call of `sids` in the records, ended, with its trails."""
    records = SqlRecords(url)
    await records.start()
    try:
        ended: list[CallRecord] = []
        for _ in range(int(timeout_s * 4)):
            calls = await records.list_calls(limit=len(sids) + 100)
            ended = [c for c in calls if c.status == CallStatus.ENDED]
            if len(ended) == len(sids) and {c.provider_call_id for c in calls} == sids:
                return [full for c in calls if (full := await records.get_call(c.call_id))]
            await asyncio.sleep(0.25)
        pytest.fail(f"records hold {len(ended)} ended calls of {len(sids)} after {timeout_s}s")
    finally:
        await records.close()


def caller(rng: random.Random) -> str:
    area = rng.choice(("415", "212"))  # CA (priority 50) or NY (default, 10)
    return f"+1{area}555{rng.randint(0, 9999):04d}"


async def test_500_concurrent_calls_on_two_nodes_never_overfill_an_agent(
    tmp_path: Path, redis_clean: str
) -> None:
    agent_ids = [f"ag{i:02d}" for i in range(20)]
    calls, talk_s = 500, 0.02
    rng = random.Random(500)
    async with (
        records_database(tmp_path) as records_url,
        cluster(tmp_path, redis_clean, agent_ids, records_url) as c,
    ):
        node_a, node_b = await asyncio.gather(c.start("node-a"), c.start("node-b"))
        bases = [node_a.base, node_b.base]
        async with clients(20, connections=25) as http:
            phone = Telephony(http, c.rest)
            agents = Agents()
            ready = asyncio.Event()
            background = [
                asyncio.create_task(agents.run(bases[i % 2], a, ready, len(agent_ids)))
                for i, a in enumerate(agent_ids)
            ]
            background.append(asyncio.create_task(phone.follow_redirects()))
            first_answer: dict[str, str] = {}  # provider call id -> "offered" | "queued"
            call_ids: dict[str, str] = {}

            async def one_call(i: int) -> None:
                sid = f"CA{i:032x}"
                resp = await phone.voice(bases[i % 2], sid, caller(rng))
                assert resp.status_code == 200, resp.text
                match = CALL_ID.search(resp.text)
                assert match is not None, resp.text
                call_id = call_ids[sid] = match.group(1)
                if "<Dial" in resp.text:
                    first_answer[sid] = "offered"
                else:
                    assert "<Enqueue" in resp.text, resp.text
                    first_answer[sid] = "queued"
                    await asyncio.wait_for(phone.dialed(sid), 45)
                await asyncio.wait_for(agents.accepted(call_id), 45)
                await asyncio.sleep(talk_s)
                await phone.hang_up(rng.choice(bases), sid, call_id)

            try:
                async with asyncio.timeout(10):
                    await ready.wait()
                async with asyncio.TaskGroup() as tg:
                    for i in range(calls):
                        tg.create_task(one_call(i))
            finally:
                await cancel_all(background)

        assert phone.follow_errors == []
        queued = sum(1 for v in first_answer.values() if v == "queued")
        assert 0 < queued < calls
        assert len(phone.followed) == queued  # one redirect per queued call, no more
        records = await wait_for_records(c.records_url, set(first_answer), timeout_s=40)

    assert len(records) == calls
    held: dict[str, list[tuple[datetime, datetime, str]]] = defaultdict(list)
    for record in records:
        assert record.provider_call_id is not None
        first = first_answer[record.provider_call_id]
        trail = [(d.trigger, d.outcome) for d in record.decisions]
        # Routed or queued exactly once; a queued call is dequeued exactly once.
        assert trail == (
            [("webhook", "offered")]
            if first == "offered"
            else [("webhook", "queued"), ("dequeue", "offered")]
        ), (record.call_id, trail)
        assert record.status == CallStatus.ENDED and record.answered_at is not None
        assert [o.outcome for o in record.offers] == [OfferOutcome.ANSWERED]
        offer = record.offers[0]
        assert offer.agent_id == record.agent_id and offer.offered_at is not None
        assert record.ended_at is not None
        held[offer.agent_id].append((offer.offered_at, record.ended_at, record.call_id))

    # Capacity 1: an agent's calls, from the offer to the end, never overlap.
    for agent_id, spans in held.items():
        spans.sort()
        for (_, end, before), (start, _, after) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"{agent_id} held {before} and {after} at once"
    assert sum(len(s) for s in held.values()) == calls
    assert set(held) == set(agent_ids)  # every agent, on either node, took calls


async def test_a_killed_node_loses_no_queued_call(tmp_path: Path, redis_clean: str) -> None:
    async with cluster(tmp_path, redis_clean, ["solo"]) as c:
        node_a, node_b = await asyncio.gather(c.start("node-a"), c.start("node-b"))
        async with clients(1, connections=10) as http:
            phone = Telephony(http, c.rest)
            agents = Agents()
            ready = asyncio.Event()
            background = [asyncio.create_task(agents.run(node_b.base, "solo", ready, 1))]
            background.append(asyncio.create_task(phone.follow_redirects()))
            try:
                async with asyncio.timeout(10):
                    await ready.wait()
                # The agent, connected to B, takes a call; three more wait in A's queue.
                first = await phone.voice(node_b.base, "CA" + "0" * 32, "+12125550100")
                first_id = CALL_ID.search(first.text).group(1)  # type: ignore[union-attr]
                assert await asyncio.wait_for(agents.accepted(first_id), 10) == "solo"
                waiting: list[tuple[str, str]] = []
                for n, number in enumerate(("+12125550101", "+14155550102", "+12125550103")):
                    sid = f"CA{n + 1:032d}"
                    resp = await phone.voice(node_a.base, sid, number)
                    assert "<Enqueue" in resp.text, resp.text
                    waiting.append((sid, CALL_ID.search(resp.text).group(1)))  # type: ignore[union-attr]

                await c.kill(node_a)
                assert node_a.proc.returncode == -signal.SIGKILL

                # The first call ends on B: B finds A's queued calls in Redis and serves them,
                # the Californian (priority 50) first, then the others in arrival order.
                await phone.hang_up(node_b.base, "CA" + "0" * 32, first_id)
                order = [waiting[1], waiting[0], waiting[2]]
                for sid, call_id in order:
                    await asyncio.wait_for(phone.dialed(sid), 10)
                    assert await asyncio.wait_for(agents.accepted(call_id), 10) == "solo"
                    await phone.hang_up(node_b.base, sid, call_id)
            finally:
                await cancel_all(background)

        redirected = [r["call_sid"] for r in c.rest.requests]
        assert redirected == [sid for sid, _ in order]
        assert all(r["form"]["Url"].startswith(node_b.base) for r in c.rest.requests)
        assert phone.follow_errors == []
        assert [CLIENT.search(t).group(1) for _, t in phone.followed] == ["solo"] * 3  # type: ignore[union-attr]
        assert agents.offers["solo"] == [first_id] + [call_id for _, call_id in order]
