"""Transcripts in the records: `utterance.final` events in, a call's utterances out.

The text arrives already redacted (the media pipeline redacts before it publishes); the
records keep it as it came. Partials and rolling sentiment are live-only and never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from loopline.domain.calls import CallStatus
from loopline.domain.events import Event, SentimentUpdated, UtteranceEvent
from loopline.records.fold import utc
from loopline.records.models import UtteranceRecord
from loopline.records.tables import CallRow, EventRow
from loopline.records.transcript_tables import UtteranceRow

InsertIgnoring = Callable[..., Executable]


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
    claimed = await session.execute(
        insert_ignoring(
            EventRow,
            {
                "source": source,
                "event_id": event_id,
                "type": event.type,
                "call_id": call_id,
                "at": at,
                "payload": event.model_dump(mode="json"),
                "applied_at": now,
            },
            ("source", "event_id"),
            returning=EventRow.id,
        )
    )
    if claimed.scalar_one_or_none() is None:
        return False
    # The utterance may be the first event of its call to reach these records.
    await session.execute(
        insert_ignoring(
            CallRow,
            {
                "call_id": call_id,
                "status": CallStatus.RECEIVED.value,
                "received_at": at,
                "context": {},
                "updated_at": now,
            },
            ("call_id",),
        )
    )
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
