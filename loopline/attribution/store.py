"""The attribution records: outcomes, QA scores, call facts, conversions and their outbox.

An outcome, the conversions it earns and their outbox rows are written in one transaction, so
a conversion is never recorded without the rows that will deliver it, nor delivered for an
outcome that was rolled back. The outbox rows are the delivery state: they survive restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loopline.attribution.facts import CallFacts
from loopline.attribution.kpis import (
    SUM_FIELDS,
    GroupBy,
    KpiReport,
    kpi_report,
    rebuild_rollups,
    rollup_changes,
)
from loopline.domain.outcomes import Conversion, Outcome, QaScore
from loopline.records.attribution_tables import (
    CallFactRow,
    ConversionRow,
    KpiDailyRow,
    OutboxRow,
    OutcomeRow,
    QaScoreRow,
    SpendRow,
)
from loopline.records.engine import create_records_engine, is_sqlite, records_url, writer
from loopline.records.fold import utc
from loopline.records.tables import CallRow

log = logging.getLogger(__name__)

T = TypeVar("T")

PENDING, SENDING, DELIVERED, DEAD, SKIPPED, CANCELLED = (
    "pending",
    "sending",
    "delivered",
    "dead",
    "skipped",
    "cancelled",
)
_PG_RETRY_STATES = {"40001", "40P01"}
_OUTBOX = cast(Table, OutboxRow.__table__)
_FACT_COLUMNS = tuple(c.name for c in CallFactRow.__table__.columns)


@dataclass
class RecordResult:
    applied: bool  # False: a disposition already stood and an automatic outcome was ignored
    created: list[Conversion] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Claimed:
    row_id: int
    conversion: Conversion
    attempts: int  # including this one
    solo: bool


@dataclass(frozen=True)
class OutboxEntry:
    row_id: int
    conversion_id: str
    call_id: str
    name: str
    destination: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    value: float
    currency: str


class AttributionStore:
    def __init__(self, url: str, *, write_attempts: int = 6) -> None:
        self._url = records_url(url)
        self.sqlite = is_sqlite(self._url)
        self._attempts = write_attempts
        self._engine: AsyncEngine | None = None
        self._writes: async_sessionmaker[AsyncSession] | None = None
        self._reads: async_sessionmaker[AsyncSession] | None = None
        self._lock = asyncio.Lock()
        self._rollup_statement: Any = None

    # -- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Connect; the schema is the records' (their `start` migrates it)."""
        async with self._lock:
            if self._engine is not None:
                return
            engine = await create_records_engine(self._url)
            self._engine = engine
            self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
            self._reads = async_sessionmaker(engine, expire_on_commit=False)

    async def close(self) -> None:
        async with self._lock:
            engine, self._engine = self._engine, None
            self._writes = self._reads = None
        if engine is not None:
            await engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("attribution store not started")
        return self._engine

    async def _sessions(self, *, write: bool) -> async_sessionmaker[AsyncSession]:
        sessions = self._writes if write else self._reads
        if sessions is None:
            raise RuntimeError("attribution store not started")
        return sessions

    async def write(self, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `body` in one write transaction, again when the database reports a conflict."""
        sessions = await self._sessions(write=True)
        for attempt in range(1, self._attempts + 1):
            try:
                async with sessions() as session, session.begin():
                    return await body(session)
            except DBAPIError as exc:
                if attempt == self._attempts or not self._conflict(exc):
                    raise
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("not reached")

    async def read(self, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
        sessions = await self._sessions(write=False)
        async with sessions() as session, session.begin():
            return await body(session)

    def _conflict(self, exc: DBAPIError) -> bool:
        if self.sqlite:
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        return getattr(exc.orig, "sqlstate", None) in _PG_RETRY_STATES

    def _upsert(
        self,
        table: type[Any],
        values: dict[str, Any],
        keys: Sequence[str],
        update_cols: Sequence[str] | None,
    ) -> Any:
        insert = sqlite_insert if self.sqlite else pg_insert
        stmt = insert(table).values(**values)
        if update_cols is None:
            return stmt.on_conflict_do_nothing(index_elements=list(keys))
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols}
        )

    # -- outcomes ----------------------------------------------------------------------------
    async def record_outcome(
        self,
        outcome: Outcome,
        facts: CallFacts,
        conversions: Sequence[Conversion],
        *,
        now: datetime,
        hold_s: float,
        zone: str,
    ) -> RecordResult:
        """Write the outcome, its conversions and their outbox rows, and the call's facts.

        An automatic outcome never replaces a disposition. Conversions of an earlier outcome
        that this one does not earn are superseded, and their undelivered rows cancelled.
        Conversions from outcomes no person confirmed wait `hold_s` before they may be sent.
        """
        now = utc(now)

        async def body(session: AsyncSession) -> RecordResult:
            existing = await session.get(
                OutcomeRow, outcome.call_id, with_for_update=not self.sqlite
            )
            if (
                existing is not None
                and existing.source == "disposition"
                and outcome.source != "disposition"
            ):
                await self._write_facts(session, facts, zone)
                return RecordResult(applied=False)
            values = {
                "call_id": outcome.call_id,
                "label": outcome.label,
                "confidence": outcome.confidence,
                "source": outcome.source,
                "evidence": [e.model_dump(mode="json") for e in outcome.evidence],
                "value": outcome.value,
                "currency": outcome.currency,
                "notes": outcome.notes,
                "agent_id": outcome.agent_id,
                "decided_by": outcome.decided_by,
                "at": utc(outcome.at),
            }
            await session.execute(
                self._upsert(OutcomeRow, values, ["call_id"], [k for k in values if k != "call_id"])
            )
            result = RecordResult(applied=True)
            stored = {
                row.id: row
                for row in (
                    await session.execute(
                        select(ConversionRow).where(ConversionRow.call_id == outcome.call_id)
                    )
                ).scalars()
            }
            wanted = {c.id for c in conversions}
            for old_id, row in stored.items():
                if old_id in wanted or row.status != "active":
                    continue
                row.status = "superseded"
                result.superseded.append(old_id)
                await session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.conversion_id == old_id, OutboxRow.status == PENDING)
                    .values(status=CANCELLED, updated_at=now, last_error="outcome changed")
                )
            due = now if outcome.source == "disposition" else now + timedelta(seconds=hold_s)
            for conv in conversions:
                payload = conv.model_dump(mode="json")
                current = stored.get(conv.id)
                if current is None:
                    session.add(
                        ConversionRow(
                            id=conv.id,
                            call_id=conv.call_id,
                            name=conv.name,
                            outcome=conv.outcome,
                            value=conv.value,
                            currency=conv.currency,
                            occurred_at=utc(conv.occurred_at),
                            status="active",
                            payload=payload,
                            created_at=now,
                        )
                    )
                    result.created.append(conv)
                    await session.flush()
                else:
                    current.value, current.currency = conv.value, conv.currency
                    current.payload, current.outcome = payload, conv.outcome
                    current.occurred_at, current.status = utc(conv.occurred_at), "active"
                    # Undelivered rows carry the new values; a cancelled row comes back.
                    await session.execute(
                        update(OutboxRow)
                        .where(
                            OutboxRow.conversion_id == conv.id,
                            OutboxRow.status.in_([PENDING, CANCELLED]),
                        )
                        .values(status=PENDING, next_attempt_at=due, updated_at=now)
                    )
                for destination in conv.destinations:
                    await session.execute(
                        self._upsert(
                            OutboxRow,
                            {
                                "conversion_id": conv.id,
                                "destination": destination,
                                "status": PENDING,
                                "attempts": 0,
                                "next_attempt_at": due,
                                "solo": False,
                                "created_at": now,
                                "updated_at": now,
                            },
                            ["conversion_id", "destination"],
                            None,
                        )
                    )
            await self._write_facts(session, facts, zone)
            return result

        return await self.write(body)

    async def _write_facts(self, session: AsyncSession, facts: CallFacts, zone: str) -> None:
        """The call's KPI row, from its facts and whatever outcome and conversions now stand."""
        outcome = await session.get(OutcomeRow, facts.call_id)
        totals = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(ConversionRow.value), 0.0)).where(
                    ConversionRow.call_id == facts.call_id, ConversionRow.status == "active"
                )
            )
        ).one()
        qa = await session.get(QaScoreRow, facts.call_id)
        await self._put_fact(
            session,
            {
                "call_id": facts.call_id,
                "day": facts.day(zone),
                "received_at": utc(facts.received_at),
                "campaign": facts.effective_campaign,
                "source": facts.source,
                "keyword": facts.keyword,
                "agent_id": facts.agent_id,
                "intent": facts.intent,
                "answered": facts.answered,
                "speed_to_answer_s": facts.speed_to_answer_s,
                "handle_s": facts.handle_s,
                "transferred": facts.transferred,
                "outcome": outcome.label if outcome is not None else None,
                "conversions": int(totals[0]),
                "revenue": float(totals[1]),
                "qa_score": qa.score if qa is not None else None,
            },
        )

    async def _put_fact(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """Write a call's facts row and move the daily sums by exactly its change."""
        old = (
            (
                await session.execute(
                    select(*[getattr(CallFactRow, c) for c in _FACT_COLUMNS])
                    .where(CallFactRow.call_id == values["call_id"])
                    .with_for_update()
                )
            )
            .mappings()
            .one_or_none()
        )
        await session.execute(
            self._upsert(CallFactRow, values, ["call_id"], [k for k in values if k != "call_id"])
        )
        before = dict(old) if old is not None else None
        rows = [
            {"day": day, "dim": dim, "key": key, **{n: getattr(change, n) for n in SUM_FIELDS}}
            for (day, dim, key), change in rollup_changes(before, values).items()
        ]
        if rows:
            # One statement for every rollup row of the call, executed with all of them: it was
            # one statement built, compiled and sent per row, the largest cost of a call's life.
            await session.execute(self._rollup_upsert(), rows)

    def _rollup_upsert(self) -> Any:
        """INSERT a daily rollup row, or add to the one there (built once per store)."""
        if self._rollup_statement is None:
            table = cast(Table, KpiDailyRow.__table__)
            stmt = (sqlite_insert if self.sqlite else pg_insert)(table)
            self._rollup_statement = stmt.on_conflict_do_update(
                index_elements=["day", "dim", "key"],
                set_={n: table.c[n] + stmt.excluded[n] for n in SUM_FIELDS},
            )
        return self._rollup_statement

    async def record_qa(self, score: QaScore) -> None:
        async def body(session: AsyncSession) -> None:
            values = {
                "call_id": score.call_id,
                "score": score.score,
                "points": score.points,
                "max_points": score.max_points,
                "items": [i.model_dump(mode="json") for i in score.items],
                "at": utc(score.at),
            }
            await session.execute(
                self._upsert(QaScoreRow, values, ["call_id"], [k for k in values if k != "call_id"])
            )
            fact = (
                (
                    await session.execute(
                        select(*[getattr(CallFactRow, c) for c in _FACT_COLUMNS]).where(
                            CallFactRow.call_id == score.call_id
                        )
                    )
                )
                .mappings()
                .one_or_none()
            )
            if fact is not None:
                await self._put_fact(session, {**fact, "qa_score": score.score})

        await self.write(body)

    async def rebuild_rollups(self) -> None:
        async def body(session: AsyncSession) -> None:
            await rebuild_rollups(session)

        await self.write(body)

    async def outcome_of(self, call_id: str) -> dict[str, Any] | None:
        async def body(session: AsyncSession) -> dict[str, Any] | None:
            row = await session.get(OutcomeRow, call_id)
            if row is None:
                return None
            qa = await session.get(QaScoreRow, call_id)
            convs = (
                (
                    await session.execute(
                        select(ConversionRow)
                        .where(ConversionRow.call_id == call_id)
                        .order_by(ConversionRow.created_at)
                    )
                )
                .scalars()
                .all()
            )
            return {
                "call_id": call_id,
                "label": row.label,
                "confidence": row.confidence,
                "source": row.source,
                "evidence": row.evidence,
                "value": row.value,
                "currency": row.currency,
                "notes": row.notes,
                "agent_id": row.agent_id,
                "decided_by": row.decided_by,
                "at": row.at.isoformat(),
                "qa": None if qa is None else {"score": qa.score, "items": qa.items},
                "conversions": [
                    {
                        "id": c.id,
                        "name": c.name,
                        "value": c.value,
                        "currency": c.currency,
                        "status": c.status,
                    }
                    for c in convs
                ],
            }

        return await self.read(body)

    async def unclassified_calls(
        self, *, ended_before: datetime, since: datetime, limit: int = 500
    ) -> list[str]:
        """Ended calls with no KPI row yet: the bus event was missed, or came before a restart."""

        async def body(session: AsyncSession) -> list[str]:
            query = (
                select(CallRow.call_id)
                .outerjoin(CallFactRow, CallFactRow.call_id == CallRow.call_id)
                .where(
                    CallRow.status == "ended",
                    CallRow.ended_at <= utc(ended_before),
                    CallRow.ended_at >= utc(since),
                    CallFactRow.call_id.is_(None),
                )
                .order_by(CallRow.ended_at)
                .limit(limit)
            )
            return list((await session.execute(query)).scalars())

        return await self.read(body)

    async def dispositions(self, limit: int = 100_000) -> list[tuple[str, str]]:
        """(call id, label) of every outcome a person gave: the classifier's training labels."""

        async def body(session: AsyncSession) -> list[tuple[str, str]]:
            rows = await session.execute(
                select(OutcomeRow.call_id, OutcomeRow.label)
                .where(OutcomeRow.source == "disposition")
                .limit(limit)
            )
            return [(r[0], r[1]) for r in rows]

        return await self.read(body)

    # -- outbox ------------------------------------------------------------------------------
    async def claim(
        self, destination: str, *, limit: int, now: datetime, owner: str, lease_s: float
    ) -> list[Claimed]:
        """Lease up to `limit` due rows of one destination to `owner`; each row to one owner.

        A row its batch refused (`solo`) goes alone. A row whose lease ran out (its sender
        died) is due again.
        """
        now = utc(now)

        async def body(session: AsyncSession) -> list[Claimed]:
            due = or_(
                and_(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now),
                and_(OutboxRow.status == SENDING, OutboxRow.leased_until < now),
            )
            query = (
                select(OutboxRow.id, OutboxRow.solo)
                .where(OutboxRow.destination == destination, due)
                .order_by(OutboxRow.next_attempt_at, OutboxRow.id)
                .limit(limit)
            )
            if not self.sqlite:
                query = query.with_for_update(skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return []
            ids = [rows[0][0]] if rows[0][1] else [r[0] for r in rows if not r[1]]
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(ids))
                .values(
                    status=SENDING,
                    lease_owner=owner,
                    leased_until=now + timedelta(seconds=lease_s),
                    attempts=OutboxRow.attempts + 1,
                    updated_at=now,
                )
            )
            joined = await session.execute(
                select(OutboxRow.id, OutboxRow.attempts, OutboxRow.solo, ConversionRow.payload)
                .join(ConversionRow, ConversionRow.id == OutboxRow.conversion_id)
                .where(OutboxRow.id.in_(ids))
                .order_by(OutboxRow.id)
            )
            return [
                Claimed(r[0], Conversion.model_validate(r[3]), r[1], r[2]) for r in joined.all()
            ]

        return await self.write(body)

    async def reclaim(self, owner: str, now: datetime) -> int:
        """Rows this owner leased in a previous life (it restarted): due again at once."""
        now = utc(now)

        async def body(session: AsyncSession) -> int:
            result = await session.execute(
                update(OutboxRow)
                .where(OutboxRow.status == SENDING, OutboxRow.lease_owner == owner)
                .values(status=PENDING, leased_until=None, next_attempt_at=now, updated_at=now)
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.write(body)

    async def mark_delivered(self, row_ids: Sequence[int], owner: str, now: datetime) -> int:
        now = utc(now)

        async def body(session: AsyncSession) -> int:
            result = await session.execute(
                update(OutboxRow)
                .where(
                    OutboxRow.id.in_(list(row_ids)),
                    OutboxRow.lease_owner == owner,
                    OutboxRow.status == SENDING,
                )
                .values(
                    status=DELIVERED,
                    delivered_at=now,
                    leased_until=None,
                    last_error=None,
                    updated_at=now,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.write(body)

    async def mark_failed(
        self,
        changes: Sequence[tuple[int, str, datetime | None, bool]],
        owner: str,
        now: datetime,
    ) -> None:
        """Each (row id, error, next attempt or None for dead, solo) from a failed send."""
        now = utc(now)

        async def body(session: AsyncSession) -> None:
            params = [
                {
                    "row_id": row_id,
                    "owner_": owner,
                    "status_": DEAD if due is None else PENDING,
                    "due_": utc(due) if due is not None else now,
                    "error_": error[:500],
                    "solo_": solo,
                    "now_": now,
                }
                for row_id, error, due, solo in changes
            ]
            t = OutboxRow.__table__.c
            stmt = (
                update(_OUTBOX)
                .where(
                    t.id == bindparam("row_id"),
                    t.lease_owner == bindparam("owner_"),
                    t.status == SENDING,
                )
                .values(
                    status=bindparam("status_"),
                    next_attempt_at=bindparam("due_"),
                    last_error=bindparam("error_"),
                    solo=bindparam("solo_"),
                    leased_until=None,
                    updated_at=bindparam("now_"),
                )
            )
            connection = await session.connection()
            await connection.execute(stmt, params)

        await self.write(body)

    async def mark_skipped(
        self, row_ids: Sequence[int], reasons: Sequence[str], owner: str, now: datetime
    ) -> None:
        now = utc(now)

        async def body(session: AsyncSession) -> None:
            t = OutboxRow.__table__.c
            stmt = (
                update(_OUTBOX)
                .where(t.id == bindparam("row_id"), t.lease_owner == bindparam("owner_"))
                .values(
                    status=SKIPPED,
                    last_error=bindparam("error_"),
                    leased_until=None,
                    updated_at=bindparam("now_"),
                )
            )
            connection = await session.connection()
            await connection.execute(
                stmt,
                [
                    {"row_id": r, "owner_": owner, "error_": reason[:500], "now_": now}
                    for r, reason in zip(row_ids, reasons, strict=True)
                ],
            )

        await self.write(body)

    async def entries(
        self, *, status: str | None = None, destination: str | None = None, limit: int = 100
    ) -> list[OutboxEntry]:
        async def body(session: AsyncSession) -> list[OutboxEntry]:
            query = select(OutboxRow, ConversionRow).join(
                ConversionRow, ConversionRow.id == OutboxRow.conversion_id
            )
            if status:
                query = query.where(OutboxRow.status == status)
            if destination:
                query = query.where(OutboxRow.destination == destination)
            rows = (await session.execute(query.order_by(OutboxRow.id.desc()).limit(limit))).all()
            return [
                OutboxEntry(
                    row_id=o.id,
                    conversion_id=o.conversion_id,
                    call_id=c.call_id,
                    name=c.name,
                    destination=o.destination,
                    status=o.status,
                    attempts=o.attempts,
                    next_attempt_at=o.next_attempt_at,
                    last_error=o.last_error,
                    delivered_at=o.delivered_at,
                    value=c.value,
                    currency=c.currency,
                )
                for o, c in rows
            ]

        return await self.read(body)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Rows per destination and status."""

        async def body(session: AsyncSession) -> dict[str, dict[str, int]]:
            rows = await session.execute(
                select(OutboxRow.destination, OutboxRow.status, func.count()).group_by(
                    OutboxRow.destination, OutboxRow.status
                )
            )
            out: dict[str, dict[str, int]] = {}
            for dest, status, n in rows:
                out.setdefault(dest, {})[status] = int(n)
            return out

        return await self.read(body)

    async def replay(
        self, *, now: datetime, row_ids: Sequence[int] | None = None, destination: str | None = None
    ) -> int:
        """Dead letters back in the queue, due at once with their attempts reset."""
        now = utc(now)

        async def body(session: AsyncSession) -> int:
            stmt = update(OutboxRow).where(OutboxRow.status == DEAD)
            if row_ids is not None:
                stmt = stmt.where(OutboxRow.id.in_(list(row_ids)))
            if destination is not None:
                stmt = stmt.where(OutboxRow.destination == destination)
            result = await session.execute(
                stmt.values(
                    status=PENDING, attempts=0, next_attempt_at=now, solo=False, updated_at=now
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

        return await self.write(body)

    async def delivered_conversions(
        self, destination: str, start: datetime, end: datetime
    ) -> list[Conversion]:
        """Conversions of one destination that occurred in [start, end), for the CSV export."""

        async def body(session: AsyncSession) -> list[Conversion]:
            rows = await session.execute(
                select(ConversionRow.payload)
                .join(OutboxRow, OutboxRow.conversion_id == ConversionRow.id)
                .where(
                    OutboxRow.destination == destination,
                    OutboxRow.status.in_([PENDING, SENDING, DELIVERED]),
                    ConversionRow.status == "active",
                    ConversionRow.occurred_at >= utc(start),
                    ConversionRow.occurred_at < utc(end),
                )
                .order_by(ConversionRow.occurred_at)
            )
            return [Conversion.model_validate(r[0]) for r in rows]

        return await self.read(body)

    # -- spend -------------------------------------------------------------------------------
    async def upsert_spend(self, rows: Sequence[dict[str, Any]], now: datetime) -> int:
        now = utc(now)

        async def body(session: AsyncSession) -> int:
            for row in rows:
                values = {**row, "imported_at": now}
                await session.execute(
                    self._upsert(
                        SpendRow,
                        values,
                        ["day", "source", "campaign"],
                        [
                            "cost",
                            "currency",
                            "clicks",
                            "conversions",
                            "conversion_value",
                            "imported_at",
                        ],
                    )
                )
            return len(rows)

        return await self.write(body)

    async def forget_call(self, call_id: str) -> None:
        """Remove a call's attribution rows (a subject-deletion request)."""

        async def body(session: AsyncSession) -> None:
            fact = (
                (
                    await session.execute(
                        select(*[getattr(CallFactRow, c) for c in _FACT_COLUMNS]).where(
                            CallFactRow.call_id == call_id
                        )
                    )
                )
                .mappings()
                .one_or_none()
            )
            if fact is not None:
                for (day, dim, key), change in rollup_changes(None, dict(fact)).items():
                    await session.execute(
                        update(KpiDailyRow)
                        .where(
                            KpiDailyRow.day == day, KpiDailyRow.dim == dim, KpiDailyRow.key == key
                        )
                        .values(
                            {n: getattr(KpiDailyRow, n) - getattr(change, n) for n in SUM_FIELDS}
                        )
                    )
            for table in (CallFactRow, QaScoreRow, OutcomeRow):
                await session.execute(delete(table).where(table.call_id == call_id))
            await session.execute(delete(ConversionRow).where(ConversionRow.call_id == call_id))

        await self.write(body)

    # -- KPIs --------------------------------------------------------------------------------
    async def kpis(self, start: date, end: date, group_by: GroupBy) -> KpiReport:
        async def body(session: AsyncSession) -> KpiReport:
            return await kpi_report(session, start, end, group_by)

        return await self.read(body)
