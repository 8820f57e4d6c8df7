"""The supervisor page with 200 live calls: browser main-thread busy time and updates per second.

A real node (uvicorn on uvloop, memory bus) runs here with 200 agents, each on a live call.
For `--seconds`, every call speaks: an interim transcript line every 0.5 s, a final line every
3 s, a sentiment reading every 2 s (about 570 events a second in all), and 2 calls a second
end and are replaced by new ones. Debian chromium (headless, via Playwright) shows
/supervisor signed in as a supervisor; Chrome's own counters (CDP `Performance.getMetrics`)
give the main thread's busy time (`TaskDuration`) over the run, and the page's counters give
events applied and frames rendered.

The goal: under 30% busy. Run: `python -m bench.bench_supervisor_page`
(writes bench/results/supervisor_page.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.bench_fanout import _run_on_uvloop, serve
from loopline.config.settings import load_settings
from loopline.domain.clock import SystemClock
from loopline.domain.events import (
    CallAnswered,
    CallEnded,
    CallerView,
    CallOffered,
    CallReceived,
    DecisionView,
    Event,
    SentimentUpdated,
    UtteranceEvent,
)
from loopline.domain.intent import Intent
from tests.support import free_port

RESULTS = Path(__file__).parent / "results" / "supervisor_page.json"
CONFIG = Path(__file__).parents[1] / "config" / "loopline.yaml"
PASSWORD = "bench-supervisor-pw"
CALLS = 200
GOAL_BUSY = 0.30
WORDS = [
    "so",
    "I",
    "was",
    "looking",
    "at",
    "the",
    "premium",
    "plan",
    "and",
    "I",
    "wanted",
    "to",
    "know",
    "whether",
    "the",
    "flood",
    "cover",
    "is",
    "included",
    "or",
    "if",
    "that",
    "costs",
    "extra",
    "because",
    "my",
    "neighbour",
    "said",
    "it",
    "was",
    "not",
]
INTENTS = ["quote", "billing", "cancel", "claim", "support"]
QUEUES = ["sales", "support", "billing", "retention"]


def _settings(tmp: Path, port: int) -> Any:
    data = yaml.safe_load(CONFIG.read_text())
    template = data["agents"][0]
    data["agents"] = [
        {
            **template,
            "id": f"a{i}",
            "name": f"Agent {i:03d}",
            "endpoint": {"kind": "client", "address": f"a{i}"},
        }
        for i in range(CALLS)
    ]
    data["policies"] = []
    data["crm"] = {}
    data["users"] = [{"username": "sam", "role": "supervisor", "name": "Sam Reyes"}]
    path = tmp / "supervisor-bench.yaml"
    path.write_text(yaml.safe_dump(data))
    environ = {
        "LOOPLINE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LOOPLINE_RECORDS_URL": f"sqlite+aiosqlite:///{tmp}/records.db",
        "LOOPLINE_TOKEN_SECRET": "bench-supervisor-secret-0123456789abcdef",
        "LOOPLINE_DEMO_PASSWORD": PASSWORD,
        "TWILIO_AUTH_TOKEN": "bench-token-0123456789abcdef",
    }
    return load_settings(path, environ=environ)


class Traffic:
    """200 agents on 200 calls, talking; calls end and new ones start."""

    def __init__(self, publish: Any, seed: int = 5) -> None:
        self.publish = publish
        self.rng = random.Random(seed)
        self.calls: dict[str, dict[str, Any]] = {}
        self.serial = 0
        self.published = 0

    async def _send(self, event: Event) -> None:
        await self.publish(event)
        self.published += 1

    async def start_call(self, agent: str) -> None:
        self.serial += 1
        call_id = f"CL{self.serial:06d}"
        now = SystemClock().now()
        caller = CallerView(number=f"+1512555{self.serial % 10000:04d}", name=None)
        queue = self.rng.choice(QUEUES)
        await self._send(
            CallReceived(
                call_id=call_id,
                at=now,
                provider_call_id=f"CA{self.serial}",
                caller=caller,
                dialed="+15005550100",
            )
        )
        intent = Intent(
            name=self.rng.choice(INTENTS), confidence=round(self.rng.uniform(0.4, 0.95), 2)
        )
        await self._send(
            CallOffered(
                call_id=call_id,
                at=now,
                agent_id=agent,
                caller=caller,
                intent=intent,
                decision=DecisionView(policy="bench", queue=queue, reason="bench"),
                expires_at=now,
            )
        )
        await self._send(CallAnswered(call_id=call_id, at=now, agent_id=agent))
        self.calls[call_id] = {"agent": agent, "words": 0, "sentiment": 0.0}

    async def speak(self, call_id: str, final: bool) -> None:
        call = self.calls[call_id]
        call["words"] = (call["words"] + 3) % len(WORDS)
        text = " ".join(WORDS[: max(3, call["words"])])
        await self._send(
            UtteranceEvent(
                type="utterance.final" if final else "utterance.partial",
                call_id=call_id,
                at=SystemClock().now(),
                track="inbound",
                speaker="caller",
                text=text,
                start_ms=0,
                end_ms=1000,
                agent_id=call["agent"],
            )
        )

    async def feel(self, call_id: str) -> None:
        call = self.calls[call_id]
        call["sentiment"] = max(-1.0, min(1.0, call["sentiment"] + self.rng.uniform(-0.2, 0.2)))
        await self._send(
            SentimentUpdated(
                call_id=call_id,
                at=SystemClock().now(),
                track="inbound",
                rolling=round(call["sentiment"], 3),
                trend=0.0,
                alert=call["sentiment"] < -0.8,
                agent_id=call["agent"],
            )
        )

    async def run(self, seconds: float) -> None:
        step = 0.1  # every 100 ms: a twentieth of the calls speak, and so on
        ticks = int(seconds / step)
        ids = list(self.calls)
        for tick in range(ticks):
            t0 = time.monotonic()
            for n, call_id in enumerate(list(self.calls)):
                phase = (n + tick) % 30
                if phase % 5 == 0:
                    await self.speak(call_id, final=phase == 0)
                if phase % 20 == 0:
                    await self.feel(call_id)
            if tick % 5 == 0:  # 2 calls a second end and are replaced
                for _ in range(1):
                    ids = list(self.calls)
                    gone = ids[self.rng.randrange(len(ids))]
                    agent = self.calls.pop(gone)["agent"]
                    await self._send(
                        CallEnded(
                            call_id=gone, at=SystemClock().now(), agent_id=agent, duration_s=60
                        )
                    )
                    await self.start_call(agent)
            await asyncio.sleep(max(0.0, step - (time.monotonic() - t0)))


async def run(seconds: float) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    path = shutil.which("chromium")
    if path is None:
        raise SystemExit(
            "needs Debian chromium (make install as root, or apt-get install chromium)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        from loopline.web.app import build_app

        app = build_app(_settings(Path(tmp), port))
        node = app.state.node
        base = f"http://127.0.0.1:{port}"
        async with serve(app, port), async_playwright() as pw:
            traffic = Traffic(node.bus.publish)
            for i in range(CALLS):
                await traffic.start_call(f"a{i}")
            # The page's first picture comes from the records; let the writer catch up.
            while await node.records.count_calls() < CALLS:  # noqa: ASYNC110 - no event for it
                await asyncio.sleep(0.1)
            browser = await pw.chromium.launch(
                executable_path=path,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            # Playwright's wait_for_function evaluates strings, which the page's CSP forbids.
            context = await browser.new_context(
                viewport={"width": 1440, "height": 1000}, bypass_csp=True
            )
            page = await context.new_page()
            await page.goto(f"{base}/signin?next=/supervisor")
            await page.get_by_label("Username").fill("sam")
            await page.get_by_label("Password").fill(PASSWORD)
            async with page.expect_navigation():
                await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_function(
                "window.__loopline && window.__loopline.socket.status === 'live'"
            )
            await page.wait_for_function(f"window.__loopline.calls.size >= {CALLS}", timeout=30_000)
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("Performance.enable", {"timeDomain": "timeTicks"})

            async def sample() -> dict[str, float]:
                metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
                got = {m["name"]: m["value"] for m in metrics}
                stats = await page.evaluate(
                    "(() => { const s = window.__loopline.stats; return {events: s.events,"
                    " renders: s.renders, rowsRendered: s.rowsRendered,"
                    " messages: s.socket.messages}; })()"
                )
                return {**got, **{f"page_{k}": float(v) for k, v in stats.items()}}

            warm = asyncio.create_task(traffic.run(2.0))
            await warm
            before, t0, sent0 = await sample(), time.monotonic(), traffic.published
            await traffic.run(seconds)
            await asyncio.sleep(0.5)  # let the last frame land
            after, t1, sent1 = await sample(), time.monotonic(), traffic.published
            rows = await page.evaluate("document.querySelectorAll('#call-rows .row').length")
            out_dir = Path(
                os.environ.get("LOOPLINE_TEST_OUTPUT", Path(__file__).parents[1] / "test-output")
            )
            await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
            await page.screenshot(path=str(out_dir / "supervisor-200-calls.png"))
            await browser.close()
    wall = t1 - t0

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    return {
        "calls": CALLS,
        "rows_on_page": rows,
        "seconds": round(wall, 2),
        "events_published_per_s": round((sent1 - sent0) / wall, 1),
        "events_applied_per_s": round(delta("page_events") / wall, 1),
        "frames_received_per_s": round(delta("page_messages") / wall, 1),
        "renders_per_s": round(delta("page_renders") / wall, 1),
        "rows_rendered_per_s": round(delta("page_rowsRendered") / wall, 1),
        "main_thread_busy": round(delta("TaskDuration") / wall, 3),
        "script_share": round(delta("ScriptDuration") / wall, 3),
        "layout_share": round(delta("LayoutDuration") / wall, 3),
        "style_share": round(delta("RecalcStyleDuration") / wall, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    result = _run_on_uvloop(run(args.seconds))
    body = {
        "bench": "supervisor_page",
        "command": "python -m bench.bench_supervisor_page",
        "goal_main_thread_busy": GOAL_BUSY,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "result": result,
        "met": result["main_thread_busy"] < GOAL_BUSY,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(body, indent=2) + "\n")
    print(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
