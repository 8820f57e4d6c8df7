"""A call's stream end to end inside the process: real VAD, a scripted recogniser, real
redaction and sentiment; the events it publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest_asyncio

from loopline.domain.clock import SystemClock
from loopline.domain.events import (
    ComplianceFlagged,
    Event,
    SentimentAlert,
    SentimentUpdated,
    UtteranceEvent,
)
from loopline.media.codec import to_pcm, ulaw_encode
from loopline.media.pool import SpeechWorkers
from loopline.media.stream import StreamOptions, StreamSession
from loopline.providers.twilio_media import DtmfDigit, MediaChunk, Track
from tests.media.engines import ScriptedEngine

SILENCE = np.zeros(8000, dtype=np.float32)


@pytest_asyncio.fixture
async def workers() -> AsyncIterator[tuple[SpeechWorkers, ScriptedEngine]]:
    engine = ScriptedEngine()
    pool = SpeechWorkers(engine_factory=lambda: engine, workers=1)
    await pool.start()
    try:
        yield pool, engine
    finally:
        await pool.stop()


def frames(samples: np.ndarray) -> list[bytes]:
    data = ulaw_encode(to_pcm(samples))
    return [data[i : i + 160].ljust(160, b"\xff") for i in range(0, len(data), 160)]


async def play(session: StreamSession, track: Track, audio: np.ndarray, order=None) -> None:  # type: ignore[no-untyped-def]
    """Half a second of audio every 20 ms: faster than real time, but in steps the VAD
    batcher sees one by one, as it would on a live call."""
    chunks = frames(audio)
    numbers = order or list(range(1, len(chunks) + 1))
    for k, n in enumerate(numbers):
        session.on_media(MediaChunk(track, n, (n - 1) * 20, chunks[n - 1]))
        if k % 25 == 24:
            await asyncio.sleep(0.02)


def session_for(
    pool: SpeechWorkers,
    events: list[Event],
    agent: str | None = "ana",
    options: StreamOptions | None = None,
) -> StreamSession:
    async def publish(event: Event) -> str:
        events.append(event)
        return "1"

    async def lookup() -> str | None:
        return agent

    return StreamSession(
        call_id="call-1",
        workers=pool,
        publish=publish,
        clock=SystemClock(),
        agent_lookup=lookup,
        options=options,
    )


async def test_a_final_utterance_is_redacted_timed_and_scored(
    workers: tuple[SpeechWorkers, ScriptedEngine], ldc: np.ndarray
) -> None:
    pool, engine = workers
    engine.default = "sure, my card is 4242 4242 4242 4242 thanks"
    events: list[Event] = []
    async with session_for(pool, events) as session:
        await play(session, "inbound", np.concatenate([SILENCE, ldc, SILENCE]))
    finals = [e for e in events if isinstance(e, UtteranceEvent) and e.type == "utterance.final"]
    assert len(finals) == 1
    final = finals[0]
    assert final.text == "sure, my card is [CARD] thanks"
    assert final.speaker == "caller" and final.track == "inbound" and final.agent_id == "ana"
    assert 800 <= final.start_ms <= 1400 and 3400 <= final.end_ms <= 4300
    (span,) = final.redactions
    assert span.kind == "card"
    assert final.start_ms < span.start_ms < span.end_ms <= final.end_ms
    assert final.sentiment is not None
    updates = [e for e in events if isinstance(e, SentimentUpdated)]
    assert len(updates) == 1 and updates[0].track == "inbound"
    assert "4242" not in "".join(e.model_dump_json() for e in events)


async def test_tracks_are_kept_apart_and_out_of_order_chunks_reordered(
    workers: tuple[SpeechWorkers, ScriptedEngine], ldc: np.ndarray
) -> None:
    pool, engine = workers
    events: list[Event] = []
    audio = np.concatenate([SILENCE, ldc, SILENCE])
    count = len(frames(audio))
    swapped = list(range(1, count + 1))
    for i in range(0, count - 1, 7):
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    async with session_for(pool, events) as session:
        await play(session, "outbound", audio, order=swapped)
        assert session.tracks["outbound"].reorder.stats.filled == 0
    finals = [e for e in events if isinstance(e, UtteranceEvent) and e.type == "utterance.final"]
    assert [(e.track, e.speaker) for e in finals] == [("outbound", "agent")]


async def test_long_speech_gets_partials_before_its_final(
    workers: tuple[SpeechWorkers, ScriptedEngine], ldc: np.ndarray
) -> None:
    pool, _ = workers
    events: list[Event] = []
    speech = np.concatenate([ldc[1000:-1500]] * 3)
    async with session_for(pool, events) as session:
        await play(session, "inbound", np.concatenate([SILENCE, speech, SILENCE]))
        await asyncio.sleep(0)
    kinds = [e.type for e in events if isinstance(e, UtteranceEvent)]
    assert "utterance.partial" in kinds
    assert kinds[-1] == "utterance.final"


async def test_keypad_digits_during_a_payment_go_nowhere(
    workers: tuple[SpeechWorkers, ScriptedEngine], ldc: np.ndarray
) -> None:
    pool, engine = workers
    engine.default = "I'd like to pay by card"
    events: list[Event] = []
    async with session_for(pool, events) as session:
        await play(session, "inbound", np.concatenate([SILENCE, ldc, SILENCE]))
        await session.finish()
        for digit in "4242424242424242":
            await session.on_dtmf(DtmfDigit("inbound", digit))
    flags = [e for e in events if isinstance(e, ComplianceFlagged)]
    assert [f.kind for f in flags] == ["dtmf_suppressed"]
    assert pool.metrics.dtmf_suppressed_total == 16
    assert "4242" not in "".join(e.model_dump_json() for e in events)


async def test_a_caller_turning_negative_raises_one_sentiment_alert(
    workers: tuple[SpeechWorkers, ScriptedEngine], ldc: np.ndarray
) -> None:
    pool, engine = workers
    engine.lines = [
        "thanks, that is great",
        "this is terrible, I am furious",
        "awful, the worst service ever, I hate this",
        "I am so angry and upset, this is horrible",
    ]
    events: list[Event] = []
    turn = np.concatenate([ldc, SILENCE])
    # Finals only: on a loaded machine the VAD's batches can run a partial of a 2.9 s turn, and
    # a partial would take the next scripted line.
    no_partials = StreamOptions(partial_min_s=60.0)
    async with session_for(pool, events, options=no_partials) as session:
        await play(session, "inbound", np.concatenate([SILENCE, *[turn] * 4]))
    alerts = [e for e in events if isinstance(e, SentimentAlert)]
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.type == "sentiment.alert" and alert.track == "inbound"
    assert alert.agent_id == "ana" and alert.rolling < 0 and alert.trend < 0
    # The update that carries the flag is still published, just before the alert.
    flagged = [e for e in events if isinstance(e, SentimentUpdated) and e.alert]
    assert len(flagged) == 1 and events.index(flagged[0]) == events.index(alert) - 1
    assert pool.metrics.sentiment_alerts_total == 1
