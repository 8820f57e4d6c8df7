"""How often callers opted out of automated decision-making, from the records' decisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from loopline.compliance.admt import REASON_PREFIX, via_of_reason
from loopline.records.tables import CallRow, DecisionRow


async def opt_out_usage(engine: AsyncEngine, since: datetime) -> tuple[int, dict[str, int]]:
    """Calls received since `since`, and of them how many opted out, by how."""
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session, session.begin():
        calls = (
            await session.execute(
                select(func.count()).select_from(CallRow).where(CallRow.received_at >= since)
            )
        ).scalar_one()
        rows = await session.execute(
            select(DecisionRow.call_id, func.min(DecisionRow.reason))
            .join(CallRow, CallRow.call_id == DecisionRow.call_id)
            .where(CallRow.received_at >= since, DecisionRow.reason.like(f"{REASON_PREFIX} (%"))
            .group_by(DecisionRow.call_id)
        )
        by: dict[str, int] = {}
        for _call_id, reason in rows:
            via = via_of_reason(str(reason)) or "unknown"
            by[via] = by.get(via, 0) + 1
    return int(calls), by
