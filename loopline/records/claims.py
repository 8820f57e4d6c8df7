"""The first step of applying any bus event: claim its id, and make sure its call has a row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from loopline.domain.calls import CallStatus
from loopline.domain.events import Event
from loopline.records.tables import CallRow, EventRow

# INSERT ... ON CONFLICT (keys) DO NOTHING in the backend's dialect:
# (table, values, keys, returning=None) -> statement.
InsertIgnoring = Callable[..., Executable]


async def claim_event(
    session: AsyncSession,
    insert_ignoring: InsertIgnoring,
    *,
    source: str,
    event_id: str,
    event: Event,
    call_id: str,
    at: datetime,
    now: datetime,
) -> bool:
    """False when this event id was applied before (the bus is at-least-once, maybe to another
    node at the same moment: the second claimer waits on the row's key, then finds it taken).

    Any event may be the first of its call to arrive, so the call's row is created if missing.
    """
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
    return True
