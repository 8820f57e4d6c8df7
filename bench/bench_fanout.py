"""Fan-out to connected desktops: bus event → hub → websocket → client, p50/p99/max.

A real node (uvicorn, memory bus, or Redis with --redis) runs in this process; 500 websocket
clients run in a second process, so the node's loop does only the node's work. Each event
carries the wall-clock time it was published; each client notes when it arrived (one host,
one clock). Three shapes, each over `--rounds` rounds:

- `one-to-500`: one event to 500 sockets of one agent (the hub's per-agent fan-out path);
- `burst-500`: 500 desktops of 500 agents, one event each, published back to back;
- `supervisors-500`: one event to 500 supervisor sockets (leading edge of their tick).

The client's own loop reads 500 sockets in turn, so its queueing is in the figures too.

Run: `python -m bench.bench_fanout [--redis]` (writes bench/results/fanout[_redis].json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

from loopline.config.settings import load_settings
from loopline.domain.clock import SystemClock
from loopline.domain.events import UtteranceEvent
from loopline.web.app import build_app
from loopline.web.auth import Principal, issue_token
from loopline.web.sockets import SERVER_OPTIONS
from tests.support import free_port

RESULTS = Path(__file__).parent / "results" / "fanout.json"
RESULTS_REDIS = Path(__file__).parent / "results" / "fanout_redis.json"
CONFIG = Path(__file__).parents[1] / "config" / "loopline.yaml"
SECRET = "bench-fanout-secret-0123456789abcdef-0123"
SOCKETS = 500
GOAL_P99_MS = 50.0


def _settings(tmp: Path, port: int, agents: int, env: dict[str, str]) -> Any:
    data = yaml.safe_load(CONFIG.read_text())
    template = data["agents"][0]
    data["agents"] = [
        {
            **template,
            "id": f"a{i}",
            "name": f"Agent {i}",
            "endpoint": {"kind": "client", "address": f"a{i}"},
        }
        for i in range(agents)
    ]
    data["policies"] = []
    data["users"] = []
    data["crm"] = {}
    path = tmp / "fanout.yaml"
    path.write_text(yaml.safe_dump(data))
    environ = {
        "LOOPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOOPLINE_RECORDS_URL": f"sqlite+aiosqlite:///{tmp}/records.db",
        "LOOPLINE_TOKEN_SECRET": SECRET,
        "TWILIO_AUTH_TOKEN": "bench-token-0123456789abcdef",
        **env,
    }
    return load_settings(path, environ=environ)


def _token(role: str, subject: str) -> str:
    return issue_token(SECRET, Principal(role=role, subject=subject), SystemClock().now())  # type: ignore[arg-type]


@asynccontextmanager
async def serve(app: Any, port: int) -> AsyncIterator[None]:
    """uvicorn as `loopline serve` runs it (the same socket options), on this loop."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


# -- the client process ----------------------------------------------------------------------


async def _clients(base: str, who: list[tuple[str, str]], pipe: Connection, expect: int) -> None:
    import websockets

    latencies: list[float] = []
    done = asyncio.Event()

    async def one(role: str, subject: str, ready: asyncio.Event) -> None:
        path = "/ws/agent" if role == "agent" else "/ws/supervisor"
        headers = {"Authorization": f"Bearer {_token(role, subject)}"}
        async with websockets.connect(
            base.replace("http", "ws", 1) + path, additional_headers=headers, max_queue=None
        ) as ws:
            await ws.recv()  # hello
            ready.set()
            async for raw in ws:
                now = time.time_ns()
                msg = json.loads(raw)
                if msg.get("type") == "utterance.final":
                    latencies.append((now - int(msg["text"])) / 1e6)
                    if len(latencies) >= expect:
                        done.set()

    readies = [asyncio.Event() for _ in who]
    tasks = [asyncio.create_task(one(r, s, e)) for (r, s), e in zip(who, readies, strict=True)]
    for event in readies:
        await event.wait()
    pipe.send("ready")
    try:
        async with asyncio.timeout(120):
            await done.wait()
    except TimeoutError:
        pass
    pipe.send(latencies)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _client_main(base: str, who: list[tuple[str, str]], pipe: Connection, expect: int) -> None:
    asyncio.run(_clients(base, who, pipe, expect))


# -- the node --------------------------------------------------------------------------------


def _event(agent_id: str) -> UtteranceEvent:
    return UtteranceEvent(
        type="utterance.final",
        call_id="CL-bench",
        at=SystemClock().now(),
        track="inbound",
        speaker="caller",
        text=str(time.time_ns()),
        start_ms=0,
        end_ms=10,
        agent_id=agent_id,
    )


async def _scenario(name: str, rounds: int, env: dict[str, str]) -> dict[str, Any]:
    if name == "one-to-500":
        who, agents = [("agent", "a0")] * SOCKETS, 1
    elif name == "burst-500":
        who, agents = [("agent", f"a{i}") for i in range(SOCKETS)], SOCKETS
    else:
        who, agents = [("supervisor", f"s{i}") for i in range(SOCKETS)], 1
    expect = rounds * SOCKETS
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        app = build_app(_settings(Path(tmp), port, agents, env))
        node = app.state.node
        async with serve(app, port):
            ctx = mp.get_context("spawn")
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_client_main, args=(f"http://127.0.0.1:{port}", who, theirs, expect)
            )
            proc.start()
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, ours.recv) == "ready"
            await asyncio.sleep(0.5)
            for _ in range(rounds):
                if name == "burst-500":
                    for i in range(SOCKETS):
                        await node.bus.publish(_event(f"a{i}"))
                        # As if from 500 webhooks: the memory bus's publish never yields, and
                        # one task publishing 500 in a row is not how calls arrive.
                        await asyncio.sleep(0)
                else:
                    await node.bus.publish(_event("a0"))
                await asyncio.sleep(0.4)  # longer than a supervisor tick: each round is fresh
            latencies: list[float] = await loop.run_in_executor(None, ours.recv)
            await loop.run_in_executor(None, proc.join, 30)
    latencies.sort()
    n = len(latencies)
    return {
        "sockets": SOCKETS,
        "rounds": rounds,
        "delivered": n,
        "expected": expect,
        "p50_ms": round(latencies[n // 2], 2) if n else None,
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))], 2) if n else None,
        "max_ms": round(latencies[-1], 2) if n else None,
        "mean_ms": round(statistics.fmean(latencies), 2) if n else None,
    }


async def run(rounds: int, use_redis: bool) -> dict[str, Any]:
    env = {"LOOPLINE_STATE": "memory"}
    if use_redis:
        url = os.environ.get("LOOPLINE_BENCH_REDIS_URL") or os.environ.get(
            "LOOPLINE_TEST_REDIS_URL"
        )
        if not url:
            raise SystemExit("--redis needs LOOPLINE_BENCH_REDIS_URL or LOOPLINE_TEST_REDIS_URL")
        env = {"LOOPLINE_STATE": "redis", "LOOPLINE_REDIS_URL": url}
    out: dict[str, Any] = {}
    for name in ("one-to-500", "burst-500", "supervisors-500"):
        out[name] = await _scenario(name, rounds, env)
        print(name, out[name], flush=True)
    return out


def _run_on_uvloop(coro: Any) -> Any:
    """`loopline serve` runs on uvloop (uvicorn's "auto" loop) when installed; so does this."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    results = _run_on_uvloop(run(args.rounds, args.redis))
    body = {
        "bench": "fanout",
        "command": "python -m bench.bench_fanout" + (" --redis" if args.redis else ""),
        "bus": "redis" if args.redis else "memory",
        "goal_p99_ms": GOAL_P99_MS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
        "met": all((r["p99_ms"] or 1e9) <= GOAL_P99_MS for r in results.values()),
    }
    path = RESULTS_REDIS if args.redis else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2) + "\n")
    print(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
