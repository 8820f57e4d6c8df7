"""Retention: each kind of data is kept for its configured days, then swept away in batches.

`cutoffs` is pure (the config and `now` in, a cut-off per kind out); `RetentionSweeper` runs the
SQL, one batch per transaction so a long sweep never holds the database, and reports counts
only. The audit log is pruned from its oldest end and leaves an anchor (the last pruned entry's
seq and hash), so the remaining chain still verifies from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import String, and_, cast, delete, func, not_, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import ColumnElement

from loopline.config.compliance import RetentionConfig
from loopline.records.attribution_tables import (
    CallFactRow,
    ConversionRow,
    OutboxRow,
    OutcomeRow,
    QaScoreRow,
)
from loopline.records.compliance_tables import AuditAnchorRow
from loopline.records.engine import writer
from loopline.records.tables import AuditRow, CallRow, DecisionRow, EventRow, OfferRow
from loopline.records.transcript_tables import UtteranceRow

log = logging.getLogger(__name__)

KINDS: Final = ("transcripts", "recordings", "journeys", "calls", "conversions", "audit")
# A conversion still on its way to a destination is never swept.
_UNSETTLED: Final = ("pending", "sending")


def cutoffs(config: RetentionConfig, now: datetime) -> dict[str, datetime | None]:
    """Per kind, the time before which data goes (None: kept until deleted by hand). Pure."""
    days = {
        "transcripts": config.transcripts_days,
        "recordings": config.recordings_days,
        "journeys": config.journeys_days,
        "calls": config.calls_days,
        "conversions": config.conversions_days,
        "audit": config.audit_days,
    }
    return {kind: None if d is None else now - timedelta(days=d) for kind, d in days.items()}


@dataclass
class RetentionReport:
    dry_run: bool
    at: datetime
    cutoffs: dict[str, datetime | None]
    counts: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, count: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + count

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "at": self.at.isoformat(),
            "cutoffs": {k: v.isoformat() if v else None for k, v in self.cutoffs.items()},
            "counts": dict(self.counts),
            "notes": dict(self.notes),
        }


class RetentionSweeper:
    def __init__(self, engine: AsyncEngine, config: RetentionConfig) -> None:
        self.config = config
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)

    async def run(self, now: datetime, *, dry_run: bool = False) -> RetentionReport:
        """Sweep every kind whose period has run out (`dry_run`: count what would go)."""
        report = RetentionReport(dry_run, now, cutoffs(self.config, now))
        steps: dict[str, Callable[[datetime, RetentionReport], Any]] = {
            "transcripts": self._transcripts,
            "journeys": self._journeys,
            "calls": self._calls,
            "conversions": self._conversions,
            "audit": self._audit,
        }
        for kind in KINDS:
            before = report.cutoffs[kind]
            report.counts.setdefault(kind, 0)
            if kind == "recordings":
                report.notes[kind] = (
                    "no recordings are stored by Loopline; set the provider's own retention"
                )
                continue
            if before is None:
                continue
            await steps[kind](before, report)
        log.info(
            "retention sweep %s",
            "counted" if dry_run else "done",
            extra={"counts": dict(report.counts), "dry_run": dry_run},
        )
        return report

    # -- one kind each -----------------------------------------------------------------------
    async def _batches(
        self,
        report: RetentionReport,
        kind: str,
        key: Any,
        where: ColumnElement[bool],
        remove: Callable[[AsyncSession, list[Any]], Any],
    ) -> None:
        """Select up to a batch of keys, remove them, commit; again until none are left."""
        if report.dry_run:
            async with self._reads() as session, session.begin():
                count = (await session.execute(select(func.count(key)).where(where))).scalar()
            report.add(kind, int(count or 0))
            return
        size = self.config.batch_size
        while True:
            async with self._writes() as session, session.begin():
                keys = list((await session.execute(select(key).where(where).limit(size))).scalars())
                if keys:
                    await remove(session, keys)
            report.add(kind, len(keys))
            if len(keys) < size:
                return

    async def _transcripts(self, before: datetime, report: RetentionReport) -> None:
        async def remove(session: AsyncSession, ids: list[Any]) -> None:
            await session.execute(delete(UtteranceRow).where(UtteranceRow.id.in_(ids)))

        await self._batches(
            report, "transcripts", UtteranceRow.id, UtteranceRow.at < before, remove
        )

    async def _journeys(self, before: datetime, report: RetentionReport) -> None:
        """The web journey kept on old calls' context: the call stays, its journey goes."""
        has_journey = cast(CallRow.context, String).like('%"session_id"%')
        where = and_(CallRow.received_at < before, has_journey)

        async def remove(session: AsyncSession, ids: list[Any]) -> None:
            rows = (
                await session.execute(select(CallRow).where(CallRow.call_id.in_(ids)))
            ).scalars()
            for row in rows:
                context = dict(row.context or {})
                context["journey"] = None
                context["journey_removed"] = "retention"
                row.context = context

        await self._batches(report, "journeys", CallRow.call_id, where, remove)

    async def _calls(self, before: datetime, report: RetentionReport) -> None:
        async def remove(session: AsyncSession, ids: list[Any]) -> None:
            await _delete_calls(session, ids)

        await self._batches(report, "calls", CallRow.call_id, CallRow.received_at < before, remove)

    async def _conversions(self, before: datetime, report: RetentionReport) -> None:
        unsettled = select(OutboxRow.conversion_id).where(OutboxRow.status.in_(_UNSETTLED))
        where = and_(ConversionRow.created_at < before, not_(ConversionRow.id.in_(unsettled)))

        async def remove(session: AsyncSession, ids: list[Any]) -> None:
            await session.execute(delete(OutboxRow).where(OutboxRow.conversion_id.in_(ids)))
            await session.execute(delete(ConversionRow).where(ConversionRow.id.in_(ids)))

        await self._batches(report, "conversions", ConversionRow.id, where, remove)

    async def _audit(self, before: datetime, report: RetentionReport) -> None:
        """The oldest entries go, never the newest one (the next entry chains to it)."""
        newest = select(func.max(AuditRow.seq)).scalar_subquery()
        where = and_(AuditRow.at < before, AuditRow.seq < newest)

        async def remove(session: AsyncSession, seqs: list[Any]) -> None:
            last = max(int(s) for s in seqs)
            # The pruned entries are the oldest ones, so every seq up to `last` goes.
            row = await session.get(AuditRow, last)
            assert row is not None
            session.add(AuditAnchorRow(seq=last, hash=row.hash, pruned_at=report.at))
            await session.flush()
            await session.execute(delete(AuditRow).where(AuditRow.seq <= last))

        if report.dry_run:
            await self._batches(report, "audit", AuditRow.seq, where, remove)
            return
        size = self.config.batch_size
        while True:
            async with self._writes() as session, session.begin():
                query = select(AuditRow.seq).where(where).order_by(AuditRow.seq).limit(size)
                seqs = list((await session.execute(query)).scalars())
                if seqs:
                    await remove(session, seqs)
            report.add("audit", len(seqs))
            if len(seqs) < size:
                return


async def _delete_calls(session: AsyncSession, ids: Sequence[str]) -> None:
    """A call and everything recorded under its id (its conversions have their own period)."""
    for table, column in (
        (UtteranceRow, UtteranceRow.call_id),
        (EventRow, EventRow.call_id),
        (DecisionRow, DecisionRow.call_id),
        (OfferRow, OfferRow.call_id),
        (OutcomeRow, OutcomeRow.call_id),
        (QaScoreRow, QaScoreRow.call_id),
        (CallFactRow, CallFactRow.call_id),
        (CallRow, CallRow.call_id),
    ):
        await session.execute(delete(table).where(column.in_(list(ids))))
