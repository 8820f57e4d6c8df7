"""`SqlRecords`: the records in SQL through SQLAlchemy's async engine (aiosqlite or asyncpg)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from loopline.domain.calls import CallStatus, Candidate
from loopline.domain.clock import Clock, SystemClock
from loopline.domain.events import AgentStateChanged, Event, UtteranceEvent
from loopline.records.base import Records, RecordsUnavailable
from loopline.records.claims import claim_event
from loopline.records.compliance_tables import call_erased, erased_calls
from loopline.records.engine import create_records_engine, is_sqlite, records_url, writer
from loopline.records.fold import CALL_EVENTS, CallEvent, apply_event, in_trail_order, utc
from loopline.records.migrate import migrate_engine
from loopline.records.models import CallRecord, DecisionRecord, OfferOutcome, OfferRecord
from loopline.records.tables import CallRow, DecisionRow, EventRow, OfferRow
from loopline.records.transcript import (
    apply_utterance,
    live_only,
    load_transcript,
    utterance_row,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_KEPT = (UtteranceEvent, *CALL_EVENTS)
# What `_recorded` lets through, by type name (the bus filters on these for the writer).
RECORDED_TYPES = frozenset(
    {"utterance.final", *(cls.model_fields["type"].default for cls in CALL_EVENTS)}
)

# PostgreSQL serialization failure and deadlock: the transaction is safe to run again.
_PG_RETRY_STATES = {"40001", "40P01"}

_CALL_FIELDS = (
    "provider_call_id",
    "caller_number",
    "dialed",
    "campaign",
    "status_at",
    "queue",
    "policy",
    "agent_id",
    "received_at",
    "queued_at",
    "answered_at",
    "ended_at",
    "duration_s",
    "end_reason",
    "context",
    "updated_at",
)
_OFFER_FIELDS = ("agent_id", "offered_at", "expires_at", "reason", "closed_at")


class SqlRecords(Records):
    """Records in SQLite or PostgreSQL, by URL.

    `sqlite+aiosqlite:///var/loopline.db` (the folder is created) or `postgresql+asyncpg://...`;
    plain `sqlite://` and `postgresql://` URLs get those async drivers.

    Several instances, in one process or many, may share one database: every write is one
    transaction that first claims the event id, then locks the call's row.
    """

    event_types = RECORDED_TYPES

    def __init__(
        self, url: str | URL, *, clock: Clock | None = None, write_attempts: int = 5
    ) -> None:
        self._url = records_url(url)
        self._sqlite = is_sqlite(self._url)
        self._clock: Clock = clock or SystemClock()
        self._write_attempts = max(1, write_attempts)
        self._engine: AsyncEngine | None = None
        self._writes: async_sessionmaker[AsyncSession] | None = None
        self._reads: async_sessionmaker[AsyncSession] | None = None

    # -- life --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._engine is not None:
            return
        engine = await create_records_engine(self._url)
        try:
            await migrate_engine(engine)
        except BaseException as exc:
            await engine.dispose()
            if _unreachable(exc):
                raise RecordsUnavailable("records database unreachable at start") from exc
            raise
        # Reads of one call's three tables should see one moment; SQLite's read transaction
        # already does, PostgreSQL's default isolation would not.
        reader = (
            engine if self._sqlite else engine.execution_options(isolation_level="REPEATABLE READ")
        )
        self._engine = engine
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._reads = async_sessionmaker(reader, expire_on_commit=False)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._writes = self._reads = None
        if engine is not None:
            await engine.dispose()

    async def ping(self) -> None:
        if self._engine is None:
            raise RecordsUnavailable("records not started")
        try:
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (DBAPIError, OSError) as exc:
            raise RecordsUnavailable("records database unreachable") from exc

    def _sessions(self, *, write: bool) -> async_sessionmaker[AsyncSession]:
        sessions = self._writes if write else self._reads
        if sessions is None:
            raise RecordsUnavailable("records not started")
        return sessions

    # -- writes ------------------------------------------------------------------------------
    async def apply(self, event_id: str, event: Event, *, source: str = "bus") -> bool:
        if not _recorded(event):
            return False
        call_id = event.call_id
        assert call_id is not None  # _recorded

        async def body(session: AsyncSession) -> bool:
            if await call_erased(session, call_id):
                return False  # a late event of an erased call (tombstone)
            if isinstance(event, UtteranceEvent):
                now = utc(self._clock.now())
                put = self._insert_ignoring
                return await apply_utterance(session, put, source, event_id, event, now)
            assert isinstance(event, CALL_EVENTS)
            return await self._apply(session, source, event_id, event, call_id)

        return await self._write(body, {"event_type": event.type, "call_id": call_id})

    async def apply_many(
        self, items: Sequence[tuple[str, Event]], *, source: str = "bus"
    ) -> list[bool]:
        """One transaction for the whole batch; see `Records.apply_many`."""
        results = [False] * len(items)
        todo: list[tuple[int, str, Event]] = []
        seen: set[str] = set()
        for index, (event_id, event) in enumerate(items):
            if _recorded(event) and event_id not in seen:
                seen.add(event_id)
                todo.append((index, event_id, event))
        if not todo:
            return results

        async def body(session: AsyncSession) -> list[int]:
            return await self._apply_batch(session, source, todo)

        for index in await self._write(body, {"events": len(todo)}):
            results[index] = True
        return results

    async def _write(
        self, body: Callable[[AsyncSession], Awaitable[_T]], about: dict[str, Any]
    ) -> _T:
        """Run `body` in one write transaction, again on a conflict (a busy SQLite file, a
        PostgreSQL serialization failure or deadlock)."""
        sessions = self._sessions(write=True)
        for attempt in range(1, self._write_attempts + 1):
            try:
                async with sessions() as session, session.begin():
                    return await body(session)
            except (DBAPIError, OSError) as exc:
                if self._retryable(exc):
                    if attempt == self._write_attempts:
                        raise RecordsUnavailable("records write kept conflicting") from exc
                elif _unreachable(exc):
                    raise RecordsUnavailable("records database unreachable") from exc
                else:
                    raise
                log.warning("records write conflict, retrying", extra={**about, "try": attempt})
                await asyncio.sleep(0.01 * 2**attempt)
        raise AssertionError("not reached: the last attempt returns or raises")

    def _retryable(self, exc: BaseException) -> bool:
        if not isinstance(exc, DBAPIError):
            return False
        if self._sqlite:
            message = str(exc.orig).lower()
            return "locked" in message or "busy" in message
        return getattr(exc.orig, "sqlstate", None) in _PG_RETRY_STATES

    def _insert_ignoring(
        self, table: type[Any], values: dict[str, Any], keys: Sequence[str], returning: Any = None
    ) -> Executable:
        """INSERT ... ON CONFLICT (keys) DO NOTHING, in the backend's dialect."""
        if self._sqlite:
            lite = sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
            return lite if returning is None else lite.returning(returning)
        pg = pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
        return pg if returning is None else pg.returning(returning)

    async def _apply(
        self, session: AsyncSession, source: str, event_id: str, event: CallEvent, call_id: str
    ) -> bool:
        now = utc(self._clock.now())
        at = utc(event.at)
        claimed = await claim_event(
            session,
            self._insert_ignoring,
            source=source,
            event_id=event_id,
            event=event,
            call_id=call_id,
            at=at,
            now=now,
        )
        if not claimed:
            return False
        row = (
            await session.execute(
                select(CallRow).where(CallRow.call_id == call_id).with_for_update()
            )
        ).scalar_one()
        decisions, offers = await _trail_rows(session, call_id)
        before = _call_record(row, decisions, offers)
        after = apply_event(before, call_id, event, now)
        _write_call(row, after)
        _sync_rows(session, call_id, DecisionRow, decisions, after.decisions, _decision_values)
        _sync_rows(session, call_id, OfferRow, offers, after.offers, _offer_values)
        return True

    async def _apply_batch(
        self, session: AsyncSession, source: str, todo: list[tuple[int, str, Event]]
    ) -> list[int]:
        """Apply events in one transaction: the same rows as applying them one by one, in
        order, with a handful of statements for the whole batch instead of six per event.

        Ids are claimed first, all at once (a redelivered one is skipped); then every call the
        batch touches is created if new, locked, read with its trails, folded in memory event
        by event and written back once. Keys are taken in sorted order, so two writers sharing
        a PostgreSQL database lock the same rows in the same order.
        """
        erased = await erased_calls(session, {e.call_id for _, _, e in todo if e.call_id})
        if erased:  # late events of erased calls (tombstones) are dropped
            todo = [item for item in todo if item[2].call_id not in erased]
            if not todo:
                return []
        now = utc(self._clock.now())
        claims: list[dict[str, Any]] = sorted(
            (
                {
                    "source": source,
                    "event_id": event_id,
                    "type": event.type,
                    "call_id": event.call_id,
                    "at": utc(event.at),
                    "payload": event.model_dump(mode="json"),
                    "applied_at": now,
                }
                for _, event_id, event in todo
            ),
            key=lambda row: str(row["event_id"]),
        )
        taken = await session.execute(
            self._insert_rows(EventRow, ("source", "event_id"), EventRow.event_id), claims
        )
        claimed_ids = set(taken.scalars())
        claimed = [item for item in todo if item[1] in claimed_ids]
        if not claimed:
            return []

        # Any event may be the first of its call to arrive: the row starts at the first one's time.
        first_at: dict[str, datetime] = {}
        for _, _, event in claimed:
            assert event.call_id is not None  # _recorded
            first_at.setdefault(event.call_id, utc(event.at))
        new_calls = [
            {
                "call_id": call_id,
                "status": CallStatus.RECEIVED.value,
                "received_at": at,
                "context": {},
                "updated_at": now,
            }
            for call_id, at in sorted(first_at.items())
        ]
        await session.execute(self._insert_rows(CallRow, ("call_id",)), new_calls)

        call_ids = sorted(
            {
                event.call_id
                for _, _, event in claimed
                if isinstance(event, CALL_EVENTS) and event.call_id is not None
            }
        )
        records: dict[str, CallRecord] = {}
        rows: dict[str, CallRow] = {}
        trails: dict[str, tuple[list[DecisionRow], list[OfferRow]]] = {}
        if call_ids:
            locked = await session.execute(
                select(CallRow)
                .where(CallRow.call_id.in_(call_ids))
                .order_by(CallRow.call_id)
                .with_for_update()
            )
            rows = {row.call_id: row for row in locked.scalars()}
            trails = await _trails_of(session, call_ids)
            for call_id in call_ids:
                decisions, offers = trails[call_id]
                records[call_id] = _call_record(rows[call_id], decisions, offers)

        for _, _, event in claimed:
            owner = event.call_id
            assert owner is not None
            if isinstance(event, UtteranceEvent):
                session.add(utterance_row(owner, event))
            elif isinstance(event, CALL_EVENTS):
                records[owner] = apply_event(records[owner], owner, event, now)

        for call_id in call_ids:
            after = records[call_id]
            decisions, offers = trails[call_id]
            _write_call(rows[call_id], after)
            _sync_rows(session, call_id, DecisionRow, decisions, after.decisions, _decision_values)
            _sync_rows(session, call_id, OfferRow, offers, after.offers, _offer_values)
        return [index for index, _, _ in claimed]

    def _insert_rows(
        self, table: type[Any], keys: Sequence[str], returning: Any = None
    ) -> Executable:
        """INSERT ... ON CONFLICT (keys) DO NOTHING on the table itself, to execute with a list
        of rows: Core rather than the ORM's bulk path (the rows are plain values), sent as few
        multi-row statements ("insertmanyvalues"), compiled once whatever the batch's size."""
        target = table.__table__
        if self._sqlite:
            lite = sqlite_insert(target).on_conflict_do_nothing(index_elements=keys)
            return lite if returning is None else lite.returning(returning)
        pg = pg_insert(target).on_conflict_do_nothing(index_elements=keys)
        return pg if returning is None else pg.returning(returning)

    # -- reads -------------------------------------------------------------------------------
    async def get_call(self, call_id: str) -> CallRecord | None:
        async with self._sessions(write=False)() as session, session.begin():
            row = await session.get(CallRow, call_id)
            if row is None:
                return None
            decisions, offers = await _trail_rows(session, call_id)
            transcript = await load_transcript(session, call_id)
            return _call_record(row, decisions, offers).model_copy(
                update={"transcript": transcript}
            )

    async def list_calls(self, limit: int = 100, since: datetime | None = None) -> list[CallRecord]:
        query = select(CallRow).order_by(CallRow.received_at.desc(), CallRow.call_id.desc())
        if since is not None:
            query = query.where(CallRow.received_at >= utc(since))
        async with self._sessions(write=False)() as session, session.begin():
            rows = (await session.execute(query.limit(max(0, limit)))).scalars().all()
        return [_call_record(row) for row in rows]

    async def count_calls(self) -> int:
        async with self._sessions(write=False)() as session, session.begin():
            count = (await session.execute(select(func.count()).select_from(CallRow))).scalar_one()
        return int(count)


def _unreachable(exc: BaseException) -> bool:
    """A lost or refused connection, as opposed to a fault in what was sent."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)


async def _trail_rows(
    session: AsyncSession, call_id: str
) -> tuple[Sequence[DecisionRow], Sequence[OfferRow]]:
    decisions = await session.execute(
        select(DecisionRow).where(DecisionRow.call_id == call_id).order_by(DecisionRow.id)
    )
    offers = await session.execute(
        select(OfferRow).where(OfferRow.call_id == call_id).order_by(OfferRow.id)
    )
    return decisions.scalars().all(), offers.scalars().all()


async def _trails_of(
    session: AsyncSession, call_ids: Sequence[str]
) -> dict[str, tuple[list[DecisionRow], list[OfferRow]]]:
    """`_trail_rows` for several calls, in two statements."""
    out: dict[str, tuple[list[DecisionRow], list[OfferRow]]] = {c: ([], []) for c in call_ids}
    decisions = await session.execute(
        select(DecisionRow).where(DecisionRow.call_id.in_(call_ids)).order_by(DecisionRow.id)
    )
    for decision in decisions.scalars():
        out[decision.call_id][0].append(decision)
    offers = await session.execute(
        select(OfferRow).where(OfferRow.call_id.in_(call_ids)).order_by(OfferRow.id)
    )
    for offer in offers.scalars():
        out[offer.call_id][1].append(offer)
    return out


def _recorded(event: Event) -> bool:
    """Whether the records keep anything of this event: call events and final utterances.

    Keep `RECORDED_TYPES` in step: the node's records writer only receives those types."""
    if event.call_id is None or isinstance(event, AgentStateChanged) or live_only(event):
        return False
    return isinstance(event, _KEPT)


def _call_record(
    row: CallRow, decisions: Sequence[DecisionRow] = (), offers: Sequence[OfferRow] = ()
) -> CallRecord:
    return CallRecord(
        call_id=row.call_id,
        status=CallStatus(row.status),
        decisions=sorted(
            (_decision_record(d) for d in decisions), key=lambda d: (d.seq, d.id or 0)
        ),
        offers=in_trail_order([_offer_record(o) for o in offers]),
        **{name: getattr(row, name) for name in _CALL_FIELDS},
    )


def _write_call(row: CallRow, call: CallRecord) -> None:
    if row.status != call.status.value:
        row.status = call.status.value
    for name in _CALL_FIELDS:
        value = getattr(call, name)
        if getattr(row, name) != value:
            setattr(row, name, value)


_Entry = TypeVar("_Entry", DecisionRecord, OfferRecord)
_Row = TypeVar("_Row", DecisionRow, OfferRow)


def _sync_rows(
    session: AsyncSession,
    call_id: str,
    table: type[_Row],
    rows: Sequence[_Row],
    entries: list[_Entry],
    values: Callable[[_Entry], dict[str, Any]],
) -> None:
    """Insert the entries with no id, update the stored ones whose values changed."""
    by_id = {row.id: row for row in rows}
    for entry in entries:
        if entry.id is None:
            session.add(table(call_id=call_id, **values(entry)))
            continue
        row = by_id[entry.id]
        for name, value in values(entry).items():
            if getattr(row, name) != value:
                setattr(row, name, value)


def _offer_record(row: OfferRow) -> OfferRecord:
    return OfferRecord(
        id=row.id,
        outcome=OfferOutcome(row.outcome) if row.outcome is not None else None,
        **{name: getattr(row, name) for name in _OFFER_FIELDS},
    )


def _offer_values(offer: OfferRecord) -> dict[str, Any]:
    values = {name: getattr(offer, name) for name in _OFFER_FIELDS}
    values["outcome"] = offer.outcome.value if offer.outcome is not None else None
    return values


def _decision_values(decision: DecisionRecord) -> dict[str, Any]:
    values = decision.model_dump(mode="json", exclude={"id", "decided_at"})
    values["decided_at"] = decision.decided_at
    return values


def _decision_record(row: DecisionRow) -> DecisionRecord:
    return DecisionRecord(
        id=row.id,
        seq=row.seq,
        trigger=row.trigger,
        outcome=row.outcome,
        policy=row.policy,
        expression=row.expression,
        queue=row.queue,
        priority=row.priority,
        strategy=row.strategy,
        step=row.step,
        agent_id=row.agent_id,
        required_skills=row.required_skills,
        candidates=[Candidate.model_validate(c) for c in row.candidates],
        rejected=row.rejected,
        reason=row.reason,
        decided_at=row.decided_at,
    )
