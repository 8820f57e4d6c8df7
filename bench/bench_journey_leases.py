"""Touch ingest per second and lease latency (p50/p99), memory and Redis stores.

Each "visit" posts a first batch (a pageview: lease or renew) then heartbeats, through
`JourneyService.record` (the route's work minus HTTP). Redis runs when LOOPLINE_REDIS_URL or
LOOPLINE_TEST_REDIS_URL is set (its keys use the prefix "bench:journey:" and are removed).

Run: `python -m bench.bench_journey_leases` (writes bench/results/journey_leases.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loopline.journey.service import JourneyService, PoolSetup
from loopline.journey.session import StoredTouch
from loopline.journey.store import JourneyStore, MemoryJourneyStore, PoolSpec

RESULTS = Path(__file__).parent / "results" / "journey_leases.json"
PREFIX = "bench:journey:"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3)


async def run(store: JourneyStore, visits: int, concurrency: int) -> dict[str, Any]:
    pool = PoolSetup(PoolSpec("bench", [f"+1500555{i:04d}" for i in range(1000)], idle_hold_s=180))
    service = JourneyService(store, pools=[pool])
    t0 = datetime(2026, 1, 5, 12, tzinfo=UTC)
    landing = "https://site.example/?utm_source=google&utm_medium=cpc&gclid=abc"
    lease_ms: list[float] = []
    touches = 0

    async def visit(i: int) -> None:
        nonlocal touches
        now = t0 + timedelta(seconds=i * 0.5)
        batch = [StoredTouch(at=now, kind="pageview", url=landing, title="Home")]
        start = time.perf_counter()
        await service.record(f"s{i:08d}", f"v{i:08d}", batch, landing, None, now)
        lease_ms.append((time.perf_counter() - start) * 1000)
        touches += 1
        for beat in range(3):
            at = now + timedelta(seconds=60 * (beat + 1))
            await service.record(
                f"s{i:08d}", f"v{i:08d}", [StoredTouch(at=at, kind="heartbeat")], landing, None, at
            )
            touches += 1

    started = time.perf_counter()
    sem = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with sem:
            await visit(i)

    await asyncio.gather(*(guarded(i) for i in range(visits)))
    elapsed = time.perf_counter() - started
    return {
        "visits": visits,
        "touch_batches": touches,
        "batches_per_s": round(touches / elapsed, 1),
        "lease_p50_ms": _pct(lease_ms, 0.5),
        "lease_p99_ms": _pct(lease_ms, 0.99),
        "lease_mean_ms": round(statistics.fmean(lease_ms), 3),
    }


async def amain(visits: int, concurrency: int) -> dict[str, Any]:
    out: dict[str, Any] = {"memory": await run(MemoryJourneyStore(), visits, concurrency)}
    url = os.environ.get("LOOPLINE_REDIS_URL") or os.environ.get("LOOPLINE_TEST_REDIS_URL")
    if url:
        from loopline.journey.redis_store import RedisJourneyStore

        store = RedisJourneyStore.from_url(url, prefix=PREFIX)
        try:
            out["redis"] = await run(store, visits, concurrency)
        finally:
            client = store._r
            keys = [k async for k in client.scan_iter(match=PREFIX + "*", count=1000)]
            for i in range(0, len(keys), 500):
                await client.delete(*keys[i : i + 500])
            await store.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--visits", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    figures = asyncio.run(amain(args.visits, args.concurrency))
    result = {
        "bench": "journey_leases",
        "command": "python -m bench.bench_journey_leases",
        **figures,
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
