"""Transcripts in the records: finals stored once, in time order; partials and rolling
sentiment never stored."""

from __future__ import annotations

from datetime import UTC, datetime

from loopline.domain.events import (
    Redaction,
    SentimentUpdated,
    SentimentView,
    UtteranceEvent,
)
from loopline.records import SqlRecords

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def utterance(kind: str, start_ms: int, text: str, track: str = "inbound") -> UtteranceEvent:
    return UtteranceEvent(
        type=kind,  # type: ignore[arg-type]
        call_id="CL1",
        at=AT,
        track=track,  # type: ignore[arg-type]
        speaker="caller" if track == "inbound" else "agent",
        text=text,
        start_ms=start_ms,
        end_ms=start_ms + 900,
        redactions=[Redaction(kind="card", start_ms=start_ms + 100, end_ms=start_ms + 800)]
        if "[CARD]" in text
        else [],
        sentiment=SentimentView(label="neutral", score=0.0),
    )


async def test_finals_make_the_transcript(records: SqlRecords) -> None:
    assert await records.apply("2-0", utterance("utterance.final", 3000, "Thanks.", "outbound"))
    assert await records.apply("1-0", utterance("utterance.final", 1000, "My card is [CARD]."))
    assert not await records.apply("1-0", utterance("utterance.final", 1000, "My card is [CARD]."))
    assert not await records.apply("3-0", utterance("utterance.partial", 5000, "still tal"))
    rolling = SentimentUpdated(call_id="CL1", at=AT, track="inbound", rolling=-0.2, trend=-0.1)
    assert not await records.apply("4-0", rolling)

    call = await records.get_call("CL1")
    assert call is not None
    assert [(u.start_ms, u.speaker, u.text) for u in call.transcript] == [
        (1000, "caller", "My card is [CARD]."),
        (3000, "agent", "Thanks."),
    ]
    assert call.transcript[0].redactions[0].kind == "card"
    assert call.transcript[0].sentiment == SentimentView(label="neutral", score=0.0)
    assert call.model_dump(mode="json")["transcript"][1]["text"] == "Thanks."


async def test_calls_without_speech_have_an_empty_transcript(records: SqlRecords) -> None:
    assert await records.get_call("nobody") is None
    await records.apply("1-0", utterance("utterance.final", 0, "Hello."))
    listed = await records.list_calls()
    assert [c.call_id for c in listed] == ["CL1"]
