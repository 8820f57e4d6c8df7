"""The audit log: append-only, hash-chained entries in the records database.

Each entry's `hash` is the SHA-256 of its canonical JSON (seq, time, actor, action, target,
outcome, detail) together with `prev_hash`, the hash of the entry before it (64 zeros for the
first). Changing, removing or reordering any entry breaks every hash after it, which
`verify_chain` finds; database triggers refuse UPDATE and DELETE on the table besides.

Appends are serialised: SQLite's write transaction takes the database lock when it begins
(BEGIN IMMEDIATE), PostgreSQL takes a transaction advisory lock, so two nodes never give two
entries the same `seq` or the same predecessor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from loopline.records.compliance_tables import AuditAnchorRow
from loopline.records.engine import writer
from loopline.records.tables import AuditRow

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x61756474  # "audt"
_PAGE = 1_000


class AuditEntry(BaseModel):
    seq: int
    at: datetime
    actor: str  # "agent:ana", "supervisor:sam", "key:crm-sync", "cli", "anonymous"
    action: str  # "signin", "signin.failed", "signout", "call.read", "user.added", ...
    target: str | None = None
    outcome: str = "ok"  # ok | denied | failed
    detail: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""


def canonical_time(at: datetime) -> str:
    """UTC with microseconds: the form both databases give back unchanged."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: AuditEntry, prev_hash: str) -> str:
    body = {
        "seq": entry.seq,
        "at": canonical_time(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "detail": entry.detail,
        "prev": prev_hash,
    }
    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def chain(entry: AuditEntry, previous: AuditEntry | None) -> AuditEntry:
    """The entry placed after `previous` (None: the first), with its seq and hashes set."""
    seq = 1 if previous is None else previous.seq + 1
    prev_hash = GENESIS if previous is None else previous.hash
    placed = entry.model_copy(update={"seq": seq, "prev_hash": prev_hash})
    return placed.model_copy(update={"hash": entry_hash(placed, prev_hash)})


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    last_hash: str
    bad_seq: int | None = None
    problem: str | None = None


def verify_chain(
    entries: Iterable[AuditEntry], *, after_seq: int = 0, after_hash: str = GENESIS
) -> ChainReport:
    """Check entries in seq order, starting after a known (seq, hash) (the start by default)."""
    expected_seq, prev = after_seq + 1, after_hash
    checked = 0
    for entry in entries:
        problem = None
        if entry.seq != expected_seq:
            problem = f"expected entry {expected_seq}, found {entry.seq}: entries missing"
        elif entry.prev_hash != prev:
            problem = "prev_hash does not match the hash of the entry before"
        elif entry.hash != entry_hash(entry, prev):
            problem = "hash does not match the entry's contents"
        if problem is not None:
            return ChainReport(False, checked, prev, bad_seq=entry.seq, problem=problem)
        checked += 1
        expected_seq, prev = entry.seq + 1, entry.hash
    return ChainReport(True, checked, prev)


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        outcome=row.outcome,
        detail=row.detail,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self._postgres = engine.dialect.name == "postgresql"
        self._writes = async_sessionmaker(writer(engine), expire_on_commit=False)
        self._reads = async_sessionmaker(engine, expire_on_commit=False)

    async def append(
        self,
        actor: str,
        action: str,
        at: datetime,
        *,
        target: str | None = None,
        outcome: str = "ok",
        detail: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(
            seq=0,
            at=at,
            actor=actor,
            action=action,
            target=target,
            outcome=outcome,
            detail=dict(detail or {}),
        )
        async with self._writes() as session, session.begin():
            if self._postgres:
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK}
                )
            last = await self._last(session)
            placed = chain(entry, last)
            session.add(
                AuditRow(
                    seq=placed.seq,
                    at=placed.at,
                    actor=placed.actor,
                    action=placed.action,
                    target=placed.target,
                    outcome=placed.outcome,
                    detail=placed.detail,
                    prev_hash=placed.prev_hash,
                    hash=placed.hash,
                )
            )
        return placed

    async def _last(self, session: AsyncSession) -> AuditEntry | None:
        row = (
            await session.execute(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1))
        ).scalar_one_or_none()
        if row is not None:
            return _entry(row)
        anchor = await _anchor(session)
        if anchor is None:
            return None
        # Every entry was pruned: the next one chains to the last pruned.
        seq, digest = anchor
        return AuditEntry(seq=seq, at=datetime.now(UTC), actor="", action="", hash=digest)

    async def anchor(self) -> tuple[int, str] | None:
        """Where retention pruned the chain to (seq, hash of that entry), if it did."""
        async with self._reads() as session, session.begin():
            return await _anchor(session)

    async def entries(self, *, after_seq: int = 0, limit: int = _PAGE) -> list[AuditEntry]:
        query = select(AuditRow).where(AuditRow.seq > after_seq).order_by(AuditRow.seq).limit(limit)
        async with self._reads() as session, session.begin():
            return [_entry(row) for row in (await session.execute(query)).scalars()]

    async def recent(self, limit: int = 100) -> list[AuditEntry]:
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit)
        async with self._reads() as session, session.begin():
            return [_entry(row) for row in (await session.execute(query)).scalars()]

    async def verify(self) -> ChainReport:
        """Check the whole chain, a page at a time, from the retention anchor if there is one."""
        after_seq, after_hash, checked = 0, GENESIS, 0
        anchor = await self.anchor()
        if anchor is not None:
            after_seq, after_hash = anchor
        while True:
            page = await self.entries(after_seq=after_seq)
            report = verify_chain(page, after_seq=after_seq, after_hash=after_hash)
            checked += report.checked
            if not report.ok or len(page) < _PAGE:
                return ChainReport(
                    report.ok, checked, report.last_hash, report.bad_seq, report.problem
                )
            after_seq, after_hash = page[-1].seq, report.last_hash


async def _anchor(session: AsyncSession) -> tuple[int, str] | None:
    row = (
        await session.execute(select(AuditAnchorRow).order_by(AuditAnchorRow.seq.desc()).limit(1))
    ).scalar_one_or_none()
    return None if row is None else (row.seq, row.hash)
