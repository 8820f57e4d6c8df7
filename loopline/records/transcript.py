"""Transcripts in the records: `utterance.final` events in, a call's utterances out.

The text arrives already redacted (the media pipeline redacts before it publishes); the
records keep it as it came. Partials and rolling sentiment are live-only and never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from loopline.domain.events import Event, SentimentUpdated, UtteranceEvent
from loopline.records.claims import InsertIgnoring, claim_event
from loopline.records.fold import utc
from loopline.records.models import UtteranceRecord
from loopline.records.transcript_tables import UtteranceRow


def live_only(event: Event) -> bool:
    """Media events the records skip: partial text and the rolling sentiment."""
    if isinstance(event, UtteranceEvent):
        return event.type != "utterance.final"
    return isinstance(event, SentimentUpdated)


async def apply_utterance(
    session: AsyncSession,
    insert_ignoring: InsertIgnoring,
    source: str,
    event_id: str,
    event: UtteranceEvent,
    now: datetime,
) -> bool:
    call_id = event.call_id
    if call_id is None:
        return False
    at = utc(event.at)
    claimed = await claim_event(
        session,
        insert_ignoring,
        source=source,
        event_id=event_id,
        event=event,
        call_id=call_id,
        at=at,
        now=now,
    )
    if not claimed:
        return False
    session.add(utterance_row(call_id, event))
    return True


def utterance_row(call_id: str, event: UtteranceEvent) -> UtteranceRow:
    return UtteranceRow(
        call_id=call_id,
        track=event.track,
        speaker=event.speaker,
        text=event.text,
        start_ms=event.start_ms,
        end_ms=event.end_ms,
        redactions=[r.model_dump(mode="json") for r in event.redactions],
        sentiment=event.sentiment.model_dump(mode="json") if event.sentiment else None,
        at=utc(event.at),
    )


async def load_transcript(session: AsyncSession, call_id: str) -> list[UtteranceRecord]:
    rows: Sequence[UtteranceRow] = (
        (
            await session.execute(
                select(UtteranceRow)
                .where(UtteranceRow.call_id == call_id)
                .order_by(UtteranceRow.start_ms, UtteranceRow.id)
            )
        )
        .scalars()
        .all()
    )
    return [_record(row) for row in rows]


def _record(row: UtteranceRow) -> UtteranceRecord:
    values: dict[str, Any] = {
        "track": row.track,
        "speaker": row.speaker,
        "text": row.text,
        "start_ms": row.start_ms,
        "end_ms": row.end_ms,
        "redactions": row.redactions,
        "sentiment": row.sentiment,
        "at": row.at,
    }
    return UtteranceRecord.model_validate(values)
