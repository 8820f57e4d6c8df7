"""Outbox throughput: conversions delivered per second to a local sink (a signed webhook that
takes 500 conversions a request), on SQLite and on PostgreSQL.

The conversions and their outbox rows are written first (untimed); what is timed is the
outbox emptying: lease a batch, render and sign it, POST it, record it delivered, again.
The sink runs in its own process. Goal: at least 2,000 conversions a second.

PostgreSQL comes from LOOPLINE_TEST_POSTGRES_URL (a fresh database is made and dropped);
without one, only SQLite is measured.

Run: `python -m bench.bench_attribution_outbox` (writes bench/results/attribution_outbox.json).
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from loopline.attribution.exporters import build_exporter
from loopline.attribution.outbox import Outbox
from loopline.attribution.store import AttributionStore
from loopline.config.attribution import WebhookDestination
from loopline.domain.clock import SystemClock
from loopline.domain.outcomes import Conversion
from loopline.records import migrate
from loopline.records.attribution_tables import ConversionRow, OutboxRow

RESULTS = Path(__file__).parent / "results" / "attribution_outbox.json"
N = 20_000


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def seed(store: AttributionStore, n: int) -> None:
    now = datetime.now(UTC)
    conversions, rows = [], []
    for i in range(n):
        c = Conversion(
            id=f"cv_{i:08d}",
            call_id=f"call-{i}",
            name="Phone sale",
            value=450.0,
            currency="USD",
            occurred_at=now - timedelta(minutes=5),
            caller_number="+14155550100",
            click_ids={"gclid": f"g{i}"},
            outcome="sale",
            destinations=["sink"],
        )
        conversions.append(
            {
                "id": c.id,
                "call_id": c.call_id,
                "name": c.name,
                "outcome": "sale",
                "value": c.value,
                "currency": c.currency,
                "occurred_at": c.occurred_at,
                "status": "active",
                "payload": c.model_dump(mode="json"),
                "created_at": now,
            }
        )
        rows.append(
            {
                "conversion_id": c.id,
                "destination": "sink",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "solo": False,
                "created_at": now,
                "updated_at": now,
            }
        )

    async def body(session: Any) -> None:
        for start in range(0, n, 5000):
            await session.execute(insert(ConversionRow), conversions[start : start + 5000])
            await session.execute(insert(OutboxRow), rows[start : start + 5000])

    await store.write(body)


async def run_one(url: str, sink_url: str) -> dict[str, Any]:
    await migrate(url)
    store = AttributionStore(url)
    await store.start()
    try:
        await seed(store, N)
        dest = WebhookDestination(kind="webhook", name="sink", url=sink_url, batch_size=500)
        box = Outbox(
            store=store,
            exporters={"sink": build_exporter(dest, {"LOOPLINE_WEBHOOK_SECRET": "bench"})},
            destinations={"sink": dest},
            clock=SystemClock(),
            owner="bench",
        )
        started = time.perf_counter()
        async with httpx.AsyncClient() as http:
            while await box.deliver_once("sink", http):
                pass
        elapsed = time.perf_counter() - started
        counts = await store.counts()
        assert counts == {"sink": {"delivered": N}}, counts
        return {
            "conversions": N,
            "seconds": round(elapsed, 2),
            "per_second": round(N / elapsed),
            "requests": box.stats["sink"].sent_requests,
            "batch": 500,
        }
    finally:
        await store.close()


async def main() -> None:
    import pytest

    from tests.records.records_databases import postgres_database

    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "bench.attribution_sink:app", "--port", str(port),
        "--log-level", "warning", cwd=Path(__file__).parents[1],
    )  # fmt: skip
    sink_url = f"http://127.0.0.1:{port}/hook"
    results: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    await http.get(sink_url)
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        with tempfile.TemporaryDirectory() as folder:
            results["sqlite"] = await run_one(f"sqlite+aiosqlite:///{folder}/bench.db", sink_url)
        try:
            async with postgres_database() as pg:
                results["postgresql"] = await run_one(pg, sink_url)
        except pytest.skip.Exception:  # no PostgreSQL here: SQLite alone
            results["postgresql"] = {"skipped": "no PostgreSQL (LOOPLINE_TEST_POSTGRES_URL)"}
    finally:
        sink.terminate()
        await sink.wait()
    result = {
        "bench": "attribution_outbox",
        "command": "python -m bench.bench_attribution_outbox",
        "machine": platform.platform(),
        "results": results,
        "goal_per_second": 2000,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
