"""The KPI query over one million calls, on SQLite and on PostgreSQL.

One million `call_facts` rows over 90 days (40 campaigns, 6 sources, 200 keywords, 60 agents,
8 intents) and 90 days of spend per campaign are loaded first, and their daily sums
(`kpi_daily`, which the pipeline keeps up call by call) made in one pass (untimed, reported as
load_s). What is timed is `kpi_report` for a 30-day window (about 333,000 calls) and for the
whole 90 days (all million), grouped by campaign and by agent: the grouped query, the spend
query and the daily trend, exactly what `GET /v1/kpis` runs. Goal: at most 500 ms.

Run: `python -m bench.bench_attribution_kpis` (writes bench/results/attribution_kpis.json).
"""

from __future__ import annotations

import asyncio
import json
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

from loopline.attribution.store import AttributionStore
from loopline.records import migrate
from loopline.records.attribution_tables import CallFactRow, SpendRow

RESULTS = Path(__file__).parent / "results" / "attribution_kpis.json"
N = 1_000_000
DAYS = 90
START = date(2026, 1, 1)


def rows(n: int, seed: int = 11) -> list[dict[str, Any]]:
    rand = random.Random(seed)
    out = []
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(n):
        day = rand.randrange(DAYS)
        answered = rand.random() < 0.8
        converted = answered and rand.random() < 0.25
        out.append(
            {
                "call_id": f"c{i:07d}",
                "day": START + timedelta(days=day),
                "received_at": base + timedelta(days=day, seconds=rand.randrange(86400)),
                "campaign": f"campaign-{rand.randrange(40)}",
                "source": f"source-{rand.randrange(6)}",
                "keyword": f"keyword-{rand.randrange(200)}",
                "agent_id": f"agent-{rand.randrange(60)}" if answered else None,
                "intent": f"intent-{rand.randrange(8)}",
                "answered": answered,
                "speed_to_answer_s": rand.uniform(2, 60) if answered else None,
                "handle_s": rand.uniform(30, 900) if answered else None,
                "transferred": answered and rand.random() < 0.1,
                "outcome": "sale" if converted else "support",
                "conversions": 1 if converted else 0,
                "revenue": round(rand.uniform(50, 900), 2) if converted else 0.0,
                "qa_score": rand.uniform(40, 100) if answered and rand.random() < 0.97 else None,
            }
        )
    return out


def spend() -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "day": START + timedelta(days=d),
            "source": f"source-{c % 6}",
            "campaign": f"campaign-{c}",
            "cost": 100.0 + c,
            "currency": "USD",
            "clicks": 200,
            "conversions": 3.0,
            "conversion_value": 150.0,
            "imported_at": now,
        }
        for d in range(DAYS)
        for c in range(40)
    ]


async def load(store: AttributionStore, data: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    if not store.sqlite:
        # COPY: the fast path PostgreSQL offers for bulk loads.
        columns = list(data[0])

        async with store.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(
                "call_facts", records=[tuple(r[c] for c in columns) for r in data], columns=columns
            )
            await conn.commit()
    else:

        async def body(session: Any) -> None:
            for start in range(0, len(data), 20_000):
                await session.execute(insert(CallFactRow), data[start : start + 20_000])

        await store.write(body)

    async def body2(session: Any) -> None:
        await session.execute(insert(SpendRow), spend())

    await store.write(body2)
    # A bulk load skips the pipeline, so the daily sums are made from the rows in one pass.
    await store.rebuild_rollups()
    async with store.engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def measure(url: str, data: list[dict[str, Any]]) -> dict[str, Any]:
    await migrate(url)
    store = AttributionStore(url)
    await store.start()
    try:
        load_s = await load(store, data)
        out: dict[str, Any] = {"rows": len(data), "load_s": round(load_s, 1)}
        for label, start, end in (
            ("30_days", START + timedelta(days=30), START + timedelta(days=59)),
            ("90_days_all", START, START + timedelta(days=DAYS - 1)),
        ):
            for group in ("campaign", "agent"):
                await store.kpis(start, end, group)  # warm the cache
                timings = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    report = await store.kpis(start, end, group)
                    timings.append((time.perf_counter() - t0) * 1000)
                out[f"{label}_by_{group}_ms"] = round(statistics.median(timings), 1)
                out[f"{label}_calls"] = report.totals.calls
        return out
    finally:
        await store.close()


async def main() -> None:
    data = rows(N)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite"] = await measure(f"sqlite+aiosqlite:///{folder}/kpis.db", data)
    import pytest

    from tests.records.records_databases import postgres_database

    try:
        async with postgres_database() as url:
            results["postgresql"] = await measure(url, data)
    except pytest.skip.Exception:  # no PostgreSQL here: SQLite alone
        results["postgresql"] = {"skipped": "no PostgreSQL (LOOPLINE_TEST_POSTGRES_URL)"}
    result = {
        "bench": "attribution_kpis",
        "command": "python -m bench.bench_attribution_kpis",
        "machine": platform.platform(),
        "results": results,
        "goal_ms": 500,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
