"""Webhook → TwiML and webhook → screen-pop latency on one node at a steady call rate.

A real node (`loopline serve`, uvicorn, the demo deployment with 50 extra agents of capacity
20, embedded state and SQLite records) runs in a subprocess. This process plays Twilio and the
agents: it sends signed voice webhooks open-loop at `--rate` calls a second (each at its
scheduled time, whether or not earlier ones were answered), the agents accept every offer on
their websockets, and each call is hung up `--hold` seconds later with the dial-status and
status callbacks Twilio would send, so agents stay free and the node carries the whole
lifecycle, not just the first webhook.

Measured from the moment each webhook is sent: the TwiML response arriving, and the
`call.offered` screen-pop arriving on the agent's socket. The first `--warmup` seconds are
not counted.

Run: `python -m bench.bench_webhook` (writes bench/results/webhook.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
import yaml
from twilio.request_validator import RequestValidator

from bench.lean_http import HttpError, LeanHttp, Reply, form_request
from loopline.web.auth import Principal, issue_token

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results" / "webhook.json"
GOALS_MS = {"twiml_p99_ms": 15.0, "screen_pop_p99_ms": 25.0}
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "0" * 32
TOKEN_SECRET = "bench-token-secret-0123456789abcdef-0123456789"
CALL_ID = re.compile(r'name="call_id" value="(CL[0-9a-f]+)"')
DIALED = ("+15005550100", "+15005550177")  # a tracked campaign number, and an unknown one


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(folder: Path, agents: int) -> Path:
    data = yaml.safe_load((ROOT / "config" / "loopline.yaml").read_text())
    data["state"] = "memory"
    data["records_url"] = f"sqlite+aiosqlite:///{folder}/records.db"
    data["crm"]["file"] = str(ROOT / "config" / "crm.yaml")
    skills = {"sales": 5, "support": 5, "billing": 5, "retention": 5, "spanish": 5}
    data["agents"] += [
        {
            "id": f"bench{i:02d}",
            "name": f"Bench agent {i}",
            "skills": skills,
            "languages": ["en", "es"],
            "capacity": 20,
            "endpoint": {"kind": "client", "address": f"bench{i:02d}"},
        }
        for i in range(agents)
    ]
    path = folder / "loopline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux); 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class NodeProcess:
    base: str
    pid: int


@contextlib.asynccontextmanager
async def node_process(folder: Path, config: Path) -> AsyncIterator[NodeProcess]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LOOPLINE_STATE": "memory",
        "LOOPLINE_PUBLIC_URL": base,
        "LOOPLINE_TOKEN_SECRET": TOKEN_SECRET,
        # Nothing here should redirect a call; if something does, it fails fast and is counted.
        "LOOPLINE_TWILIO_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "LOOPLINE_NODE_ID": "bench-node",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "PYTHONUNBUFFERED": "1",
    }
    log = folder / "node.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "loopline.cli", "serve", "--config", str(config)),
            *("--port", str(port), "--log-level", "warning"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(300):
                if proc.returncode is not None:
                    raise RuntimeError(f"node exited at start:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(base + "/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"node did not start:\n{log.read_text()[-3000:]}")
        yield NodeProcess(base, proc.pid)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@dataclass
class Tally:
    sent_at: dict[str, float] = field(default_factory=dict)  # call id -> webhook sent
    counted: set[str] = field(default_factory=set)  # call ids past the warm-up
    twiml_ms: list[float] = field(default_factory=list)
    pop_at: dict[str, float] = field(default_factory=dict)  # call id -> screen-pop arrived
    answers: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    send_lag_ms: list[float] = field(default_factory=list)  # behind the open-loop schedule
    accepted: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    completed: int = 0  # calls whose hang-up webhooks were answered
    last_answer: float = 0.0  # when the last voice webhook was answered (perf_counter)

    def accepted_future(self, call_id: str) -> asyncio.Future[None]:
        future = self.accepted.get(call_id)
        if future is None:
            future = self.accepted[call_id] = asyncio.get_running_loop().create_future()
        return future


class Agents:
    """The simulated agents: go available, accept every offer, note when each pop arrived."""

    def __init__(self, base: str, tally: Tally, count: int) -> None:
        self.base = base
        self.tally = tally
        self.count = count
        self.available = 0
        self.ready = asyncio.Event()

    async def run(self, agent_id: str) -> None:
        token = issue_token(
            TOKEN_SECRET, Principal(role="agent", subject=agent_id), datetime.now(UTC)
        )
        url = self.base.replace("http", "ws", 1) + "/ws/agent"
        headers = {"Authorization": f"Bearer {token}"}
        tally = self.tally
        async with websockets.connect(url, additional_headers=headers, max_queue=None) as ws:
            await ws.send(json.dumps({"type": "state", "state": "available"}))
            async for raw in ws:
                arrived = time.perf_counter()
                msg = json.loads(raw)
                kind = msg.get("type")
                if kind == "call.offered":
                    tally.pop_at.setdefault(msg["call_id"], arrived)
                    await ws.send(json.dumps({"type": "accept", "call_id": msg["call_id"]}))
                elif kind == "ack" and msg.get("of") == "accept":
                    future = tally.accepted_future(msg["call_id"])
                    if not future.done():
                        future.set_result(None)
                elif kind == "ack" and msg.get("of") == "state":
                    self.available += 1
                    if self.available == self.count:
                        self.ready.set()


class Twilio:
    """Signed webhooks, as Twilio sends them, over the lean keep-alive client."""

    def __init__(self, base: str, http: LeanHttp) -> None:
        self.base = base
        self.http = http
        self.host = base.removeprefix("http://")
        self.validator = RequestValidator(AUTH_TOKEN)

    def request(self, path: str, params: dict[str, str]) -> bytes:
        """The signed request's bytes: Twilio's work, not the node's."""
        signature = self.validator.compute_signature(self.base + path, params)
        return form_request(self.host, path, params, {"X-Twilio-Signature": signature})

    async def post(self, path: str, params: dict[str, str]) -> Reply:
        return await self.http.send(self.request(path, params))


@dataclass(frozen=True)
class Script:
    """One call's webhooks that can be signed before the clock starts."""

    sid: str
    voice: bytes
    status: bytes


def script(twilio: Twilio, n: int) -> Script:
    rng = random.Random(n)
    sid = f"CA{n:032x}"
    params = {
        "CallSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": f"+1{rng.choice(('212', '415', '512', '617'))}555{rng.randint(0, 9999):04d}",
        "To": DIALED[n % len(DIALED)],
        "CallStatus": "ringing",
    }
    status = {"CallSid": sid, "CallStatus": "completed"}
    return Script(
        sid, twilio.request("/twilio/voice", params), twilio.request("/twilio/status", status)
    )


async def one_call(
    twilio: Twilio, tally: Tally, plan: Script, due: float, counted: bool, hold_s: float
) -> None:
    sid = plan.sid
    await asyncio.sleep(max(0.0, due - time.perf_counter()))
    sent = time.perf_counter()
    try:
        resp = await twilio.http.send(plan.voice)
    except HttpError as exc:
        tally.errors.append(f"voice: {exc}")
        return
    answered = time.perf_counter()
    took_ms = (answered - sent) * 1000
    tally.last_answer = max(tally.last_answer, answered)
    if counted:
        tally.send_lag_ms.append((sent - due) * 1000)
    body = resp.text
    match = CALL_ID.search(body)
    kind = "dial" if "<Client>" in body else "enqueue" if "<Enqueue" in body else "other"
    tally.answers[kind] = tally.answers.get(kind, 0) + 1
    if resp.status != 200 or match is None:
        tally.errors.append(f"voice: HTTP {resp.status}")
        return
    call_id = match.group(1)
    tally.sent_at[call_id] = sent
    if counted:
        tally.counted.add(call_id)
        tally.twiml_ms.append(took_ms)
    if kind != "dial":
        return
    try:
        await asyncio.wait_for(tally.accepted_future(call_id), 10)
    except TimeoutError:
        tally.errors.append("accept: timed out")
        return
    await asyncio.sleep(hold_s)
    try:
        # Signed now: the URL carries the call id the node chose.
        done = await twilio.post(
            f"/twilio/dial-status?call_id={call_id}",
            {"CallSid": sid, "DialCallStatus": "completed", "DialCallDuration": str(int(hold_s))},
        )
        if done.status != 200:
            tally.errors.append(f"dial-status: HTTP {done.status}")
        await twilio.http.send(plan.status)
    except HttpError as exc:
        tally.errors.append(f"hang-up: {exc}")
    tally.completed += 1


async def _until_idle(pid: int, idle_share: float = 0.05, limit_s: float = 120.0) -> float:
    """CPU seconds the node spends from now until a second in which it uses under
    `idle_share` of a core (or `limit_s` passes)."""
    total = 0.0
    for _ in range(int(limit_s)):
        before = cpu_seconds(pid)
        await asyncio.sleep(1.0)
        used = cpu_seconds(pid) - before
        total += used
        if used < idle_share:
            break
    return total


def summary(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"runs": 0}
    ordered = sorted(samples_ms)
    n = len(ordered)
    return {
        "p50_ms": round(ordered[n // 2], 2),
        "p90_ms": round(ordered[int(n * 0.9)], 2),
        "p99_ms": round(ordered[min(n - 1, int(n * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(sum(ordered) / n, 2),
        "runs": n,
    }


async def run(
    rate: float, duration_s: float, warmup_s: float, agents: int, hold_s: float
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loopline-bench-") as tmp:
        folder = Path(tmp)
        config = write_config(folder, agents)
        async with node_process(folder, config) as node:
            base = node.base
            tally = Tally()
            crowd = Agents(base, tally, agents)
            http = LeanHttp("127.0.0.1", int(base.rsplit(":", 1)[1]), size=100)
            try:
                twilio = Twilio(base, http)
                sockets = [asyncio.create_task(crowd.run(f"bench{i:02d}")) for i in range(agents)]
                try:
                    async with asyncio.timeout(20):
                        await crowd.ready.wait()
                    total = int(rate * (warmup_s + duration_s))
                    plans = [script(twilio, n) for n in range(total)]
                    cpu = (cpu_seconds(node.pid), cpu_seconds(os.getpid()))
                    start = time.perf_counter() + 0.2
                    async with asyncio.TaskGroup() as tg:
                        for n, plan in enumerate(plans):
                            due = start + n / rate
                            counted = n >= rate * warmup_s
                            tg.create_task(one_call(twilio, tally, plan, due, counted, hold_s))
                    wall = time.perf_counter() - start
                    node_cpu = cpu_seconds(node.pid) - cpu[0]
                    bench_cpu = cpu_seconds(os.getpid()) - cpu[1]
                    # Work a call leaves behind (its outcome and QA, `settle_s` after it ends;
                    # records still queued) runs after the last hang-up: counted until the node
                    # is idle again, so that the CPU per call is the whole of it.
                    after = await _until_idle(node.pid)
                    node_cpu += after
                finally:
                    for task in sockets:
                        task.cancel()
                    await asyncio.gather(*sockets, return_exceptions=True)
            finally:
                await http.close()
    pops = [(tally.pop_at[c] - tally.sent_at[c]) * 1000 for c in tally.counted if c in tally.pop_at]
    twiml = summary(tally.twiml_ms)
    pop = summary(pops)
    return {
        "rate_per_s": rate,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "hold_s": hold_s,
        "agents": agents,
        "calls": total,
        "wall_s": round(wall, 2),
        # Voice webhooks answered per second, from the first sent to the last answered: below
        # `rate_per_s` when the node fell behind the schedule.
        "achieved_calls_per_s": round(
            sum(tally.answers.values()) / max(1e-9, tally.last_answer - start), 1
        ),
        "completed": tally.completed,  # calls carried through their hang-up webhooks
        # The whole lifecycle (3 webhooks, the socket, records, outcomes) per call.
        "node_cpu_ms_per_call": round(node_cpu * 1000 / total, 2),
        "node_cpu_after_s": round(after, 2),  # of that, spent after the last hang-up
        "node_cpu_share": round((node_cpu - after) / wall, 2),  # of one core, over the run
        "bench_cpu_ms_per_call": round(bench_cpu * 1000 / total, 2),
        "answers": tally.answers,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "twiml": twiml,
        "screen_pop": pop,
        "pops_missing": len(tally.counted) - len(pops),
        "send_lag": summary(tally.send_lag_ms),
        "goals": GOALS_MS,
        "pass": {
            "twiml_p99": twiml.get("p99_ms", 1e9) <= GOALS_MS["twiml_p99_ms"],
            "screen_pop_p99": pop.get("p99_ms", 1e9) <= GOALS_MS["screen_pop_p99_ms"],
        },
    }


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed (uvicorn's own loop): the generator's loop costs less CPU."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rates",
        default="200,100,60,40",
        help="new calls per second, one run (and one fresh node) per rate; the first is the goal's"
        " and the others show where the goals hold",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not counted")
    parser.add_argument("--agents", type=int, default=50, help="extra agents, capacity 20")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds each call lasts")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    runs = []
    for rate in rates:
        before = os.getloadavg()
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            figures = runner.run(run(rate, args.duration, args.warmup, args.agents, args.hold))
        # Other work on the machine shows in the tail; the load average says how much there was.
        figures["load_average"] = {"before": before[0], "after": os.getloadavg()[0]}
        runs.append(figures)
        t, p = figures["twiml"], figures["screen_pop"]
        print(
            f"webhook at {rate:.0f} calls/s: TwiML p50 {t.get('p50_ms')} ms"
            f" p99 {t.get('p99_ms')} ms (goal {GOALS_MS['twiml_p99_ms']}); screen-pop p50"
            f" {p.get('p50_ms')} ms p99 {p.get('p99_ms')} ms (goal"
            f" {GOALS_MS['screen_pop_p99_ms']}); node CPU {figures['node_cpu_ms_per_call']} ms"
            f" a call ({figures['node_cpu_share']:.0%} of a core), achieved"
            f" {figures['achieved_calls_per_s']} calls/s, generator CPU"
            f" {figures['bench_cpu_ms_per_call']} ms a call; answers {figures['answers']},"
            f" errors {figures['errors']}"
        )
    result = {
        "benchmark": "webhook latency",
        "command": "python -m bench.bench_webhook",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "node": "one `loopline serve` process (uvicorn), memory state, SQLite records",
        "goals": {"rate_per_s": 200, **GOALS_MS},
        "pass": runs[0]["pass"] if runs and runs[0]["rate_per_s"] == 200 else None,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
