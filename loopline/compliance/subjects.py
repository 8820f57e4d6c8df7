"""Data-subject rights in the records: find everything held about a person (by phone number,
e-mail address or web visitor id), export it, erase it and leave tombstones.

The live state (calls, last-agent keys, journey sessions, the bus) is erased by the web room,
which holds those stores; this module owns the SQL side. A tombstone keeps a hash of each
identifier and of each erased call's ids, never the identifier, so a late webhook or a replayed
event can be recognised and dropped (`records.compliance_tables.call_erased`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from pydantic import BaseModel, model_validator
from sqlalchemy import String, cast, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loopline.records.attribution_tables import (
    CallFactRow,
    ConversionRow,
    OutboxRow,
    OutcomeRow,
    QaScoreRow,
)
from loopline.records.compliance_tables import TombstoneRow, tombstone_digest
from loopline.records.engine import writer
from loopline.records.tables import CallRow, DecisionRow, EventRow, OfferRow
from loopline.records.transcript_tables import UtteranceRow

_VISITOR = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class SubjectError(ValueError):
    """A request that names nobody, or names them in a form we cannot read (never echoed)."""


class Subject(BaseModel):
    """Who a request is about: any of a phone number, an e-mail address, a visitor id."""

    phone: str | None = None
    email: str | None = None
    visitor_id: str | None = None

    @model_validator(mode="after")
    def _someone(self) -> Subject:
        if not (self.phone or self.email or self.visitor_id):
            raise ValueError("give a phone number, an e-mail address or a visitor id")
        return self

    def normalised(self, default_region: str = "US") -> Subject:
        """E.164 number, lower-case address, checked visitor id; `SubjectError` otherwise."""
        phone = email = visitor = None
        if self.phone:
            try:
                parsed = phonenumbers.parse(
                    self.phone, None if self.phone.strip().startswith("+") else default_region
                )
            except phonenumbers.NumberParseException:
                raise SubjectError("phone is not a phone number") from None
            if not phonenumbers.is_possible_number(parsed):
                raise SubjectError("phone is not a phone number")
            phone = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if self.email:
            email = self.email.strip().lower()
            if "@" not in email or len(email) > 320:
                raise SubjectError("email is not an e-mail address")
        if self.visitor_id:
            visitor = self.visitor_id.strip()
            if not _VISITOR.match(visitor):
                raise SubjectError("visitor_id is not a visitor id")
        return Subject(phone=phone, email=email, visitor_id=visitor)

    def digests(self) -> list[tuple[str, str]]:
        """(kind, digest) of each identifier given: what the tombstones keep."""
        out = []
        if self.phone:
            out.append(("phone", tombstone_digest("phone", self.phone)))
        if self.email:
            out.append(("email", tombstone_digest("email", self.email)))
        if self.visitor_id:
            out.append(("visitor", tombstone_digest("visitor", self.visitor_id)))
        return out

    def label(self) -> str:
        """For the audit log: which kinds were given and the hash of each, never the value."""
        return ",".join(f"{kind}:{digest[:16]}" for kind, digest in self.digests())


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def context_matches(subject: Subject, context: dict[str, Any], caller: str | None) -> bool:
    """Whether a call's stored context is about the subject. Pure."""
    if subject.phone and caller == subject.phone:
        return True
    crm = _mapping(context.get("crm"))
    journey = _mapping(context.get("journey"))
    extra = _mapping(journey.get("extra"))
    if subject.phone and _mapping(context.get("caller")).get("number") == subject.phone:
        return True
    if subject.email and subject.email in (_text(crm.get("email")), _text(extra.get("email"))):
        return True
    return bool(subject.visitor_id and extra.get("visitor_id") == subject.visitor_id)


def payload_matches(subject: Subject, payload: dict[str, Any]) -> bool:
    """Whether a conversion's payload carries the subject's number or address. Pure."""
    if subject.phone and payload.get("caller_number") == subject.phone:
        return True
    return bool(subject.email and _text(payload.get("email")) == subject.email)


@dataclass
class Holdings:
    """What the records hold about one subject: the keys to read or erase it by."""

    call_ids: set[str] = field(default_factory=set)
    provider_call_ids: set[str] = field(default_factory=set)
    caller_numbers: set[str] = field(default_factory=set)
    session_ids: set[str] = field(default_factory=set)
    visitor_ids: set[str] = field(default_factory=set)
    conversion_ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Erased:
    counts: dict[str, int]
    tombstones: int


class SubjectRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._sqlite = engine.dialect.name == "sqlite"
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)

    # -- finding -----------------------------------------------------------------------------
    async def find(self, subject: Subject) -> Holdings:
        """Every call and conversion about the subject (`subject` normalised already)."""
        found = Holdings()
        if subject.visitor_id:
            found.visitor_ids.add(subject.visitor_id)
        async with self._reads() as session, session.begin():
            calls = await self._matching_calls(session, subject)
            for row in calls:
                found.call_ids.add(row.call_id)
                if row.provider_call_id:
                    found.provider_call_ids.add(row.provider_call_id)
                if row.caller_number:
                    found.caller_numbers.add(row.caller_number)
                journey = row.context.get("journey") if isinstance(row.context, dict) else None
                if isinstance(journey, dict):
                    if journey.get("session_id"):
                        found.session_ids.add(str(journey["session_id"]))
                    extra = journey.get("extra") or {}
                    if isinstance(extra, dict) and extra.get("visitor_id"):
                        found.visitor_ids.add(str(extra["visitor_id"]))
            for conv in await self._matching_conversions(session, subject, found.call_ids):
                found.conversion_ids.add(conv.id)
                found.call_ids.add(conv.call_id)
        return found

    async def _matching_calls(self, session: AsyncSession, subject: Subject) -> list[CallRow]:
        rows: dict[str, CallRow] = {}
        if subject.phone:
            query = select(CallRow).where(CallRow.caller_number == subject.phone)
            for row in (await session.execute(query)).scalars():
                rows[row.call_id] = row
        needles = [v for v in (subject.email, subject.visitor_id) if v]
        if needles:
            # A cheap text filter narrows the scan; `context_matches` decides.
            text = cast(CallRow.context, String)
            query = select(CallRow).where(or_(*(text.ilike(f"%{n}%") for n in needles)))
            for row in (await session.execute(query)).scalars():
                if context_matches(subject, row.context or {}, row.caller_number):
                    rows[row.call_id] = row
        return list(rows.values())

    async def _matching_conversions(
        self, session: AsyncSession, subject: Subject, call_ids: set[str]
    ) -> list[ConversionRow]:
        rows: dict[str, ConversionRow] = {}
        for chunk in _chunks(sorted(call_ids)):
            query = select(ConversionRow).where(ConversionRow.call_id.in_(chunk))
            for row in (await session.execute(query)).scalars():
                rows[row.id] = row
        needles = [v for v in (subject.phone, subject.email) if v]
        if needles:
            text = cast(ConversionRow.payload, String)
            query = select(ConversionRow).where(or_(*(text.ilike(f"%{n}%") for n in needles)))
            for row in (await session.execute(query)).scalars():
                if payload_matches(subject, row.payload or {}):
                    rows[row.id] = row
        return list(rows.values())

    # -- export ------------------------------------------------------------------------------
    async def export_attribution(self, found: Holdings) -> dict[str, list[dict[str, Any]]]:
        """Outcomes, QA scores and conversions (with their delivery state) of the calls."""
        out: dict[str, list[dict[str, Any]]] = {"outcomes": [], "qa_scores": [], "conversions": []}
        async with self._reads() as session, session.begin():
            for chunk in _chunks(sorted(found.call_ids)):
                for outcome in (
                    await session.execute(select(OutcomeRow).where(OutcomeRow.call_id.in_(chunk)))
                ).scalars():
                    out["outcomes"].append(_row_dict(outcome))
                for qa in (
                    await session.execute(select(QaScoreRow).where(QaScoreRow.call_id.in_(chunk)))
                ).scalars():
                    out["qa_scores"].append(_row_dict(qa))
            for chunk in _chunks(sorted(found.conversion_ids)):
                convs = (
                    await session.execute(select(ConversionRow).where(ConversionRow.id.in_(chunk)))
                ).scalars()
                for conv in convs:
                    deliveries = (
                        await session.execute(
                            select(OutboxRow).where(OutboxRow.conversion_id == conv.id)
                        )
                    ).scalars()
                    entry = _row_dict(conv)
                    entry["deliveries"] = [
                        {
                            "destination": d.destination,
                            "status": d.status,
                            "attempts": d.attempts,
                            "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
                        }
                        for d in deliveries
                    ]
                    out["conversions"].append(entry)
        return out

    # -- erasure -----------------------------------------------------------------------------
    async def erase(self, subject: Subject, found: Holdings, now: datetime) -> Erased:
        """Tombstones first, then every row, in one transaction."""
        marks = [*subject.digests()]
        marks += [("call", tombstone_digest("call", c)) for c in sorted(found.call_ids)]
        marks += [
            ("provider_call", tombstone_digest("provider_call", p))
            for p in sorted(found.provider_call_ids)
        ]
        marks += [("phone", tombstone_digest("phone", n)) for n in sorted(found.caller_numbers)]
        marks += [("visitor", tombstone_digest("visitor", v)) for v in sorted(found.visitor_ids)]
        unique = {digest: kind for kind, digest in marks}
        conversions = sorted(found.conversion_ids)
        calls = sorted(found.call_ids)
        counts: dict[str, int] = {}
        async with self._writes() as session, session.begin():
            for digest, kind in unique.items():
                await session.execute(self._tombstone(digest, kind, now))
            for chunk in _chunks(calls):
                # Conversions found by their call: their outbox rows go first.
                by_call = select(ConversionRow.id).where(ConversionRow.call_id.in_(chunk))
                result = await session.execute(
                    delete(OutboxRow).where(OutboxRow.conversion_id.in_(by_call))
                )
                counts["outbox"] = counts.get("outbox", 0) + _count(result)
            steps: Sequence[tuple[str, Any, Any, list[str]]] = (
                ("outbox", OutboxRow, OutboxRow.conversion_id, conversions),
                ("conversions", ConversionRow, ConversionRow.id, conversions),
                ("conversions", ConversionRow, ConversionRow.call_id, calls),
                ("outcomes", OutcomeRow, OutcomeRow.call_id, calls),
                ("qa_scores", QaScoreRow, QaScoreRow.call_id, calls),
                ("call_facts", CallFactRow, CallFactRow.call_id, calls),
                ("transcripts", UtteranceRow, UtteranceRow.call_id, calls),
                ("call_events", EventRow, EventRow.call_id, calls),
                ("decisions", DecisionRow, DecisionRow.call_id, calls),
                ("offers", OfferRow, OfferRow.call_id, calls),
                ("calls", CallRow, CallRow.call_id, calls),
            )
            for name, table, column, keys in steps:
                for chunk in _chunks(keys):
                    result = await session.execute(delete(table).where(column.in_(chunk)))
                    counts[name] = counts.get(name, 0) + _count(result)
        return Erased(counts, len(unique))

    def _tombstone(self, digest: str, kind: str, now: datetime) -> Any:
        values = {"digest": digest, "kind": kind, "erased_at": now}
        if self._sqlite:
            return sqlite_insert(TombstoneRow).values(**values).on_conflict_do_nothing()
        return pg_insert(TombstoneRow).values(**values).on_conflict_do_nothing()

    async def erased(self, kind: str, value: str) -> bool:
        digest = tombstone_digest(kind, value)
        async with self._reads() as session, session.begin():
            found = await session.execute(
                select(TombstoneRow.digest).where(TombstoneRow.digest == digest)
            )
            return found.first() is not None


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _chunks(keys: Sequence[str], size: int = 500) -> Iterable[list[str]]:
    for i in range(0, len(keys), size):
        yield list(keys[i : i + size])


def _row_dict(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = value.isoformat() if hasattr(value, "isoformat") else value
    return out
